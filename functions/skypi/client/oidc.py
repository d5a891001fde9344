"""Trusted Publishing from CI for ``skypi publish``: the same exchange uv makes.

Ask the index for its audience, get the CI job's OIDC token for it (GitHub Actions, GitLab CI,
Buildkite, ... as the ``id`` library finds it, the library the PyPA publish action uses), and
exchange it at ``/_/oidc/mint-token`` for a short-lived upload token, burnt when done.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import id as ambient


class TrustedPublishingError(Exception):
    """No upload token could be had: the message says why (the index's reason, if it gave one)."""


def _reason(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(f"{e.get('code')}: {e.get('description')}" for e in errors) or (
            response.text.strip()
        )
    except (ValueError, AttributeError):
        return response.text.strip()


def ci_identity(audience: str) -> str | None:
    """The CI job's OIDC token for ``audience``; None when not running in a supported CI."""
    try:
        return ambient.detect_credential(audience)
    except ambient.IdentityError as exc:
        raise TrustedPublishingError(f"the CI's OIDC token could not be had: {exc}") from exc


def mint(url: str, http: httpx.Client) -> str | None:
    """An upload token for ``url`` (an index's base URL) from this CI job's identity; None when
    not in CI. Raises :class:`TrustedPublishingError` when the index refuses."""
    base = url.rstrip("/")
    try:
        response = http.get(f"{base}/_/oidc/audience")
        if response.status_code in {403, 404}:
            raise TrustedPublishingError(f"{base} does not take trusted publishing")
        response.raise_for_status()
        audience = response.json()["audience"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise TrustedPublishingError(f"cannot ask {base} for its audience: {exc}") from exc
    oidc_token = ci_identity(str(audience))
    if oidc_token is None:
        return None
    try:
        response = http.post(f"{base}/_/oidc/mint-token", json={"token": oidc_token})
    except httpx.HTTPError as exc:
        raise TrustedPublishingError(f"cannot reach {base}: {exc}") from exc
    body: Any = None
    with contextlib.suppress(ValueError):
        body = response.json()
    if response.status_code != 200 or not isinstance(body, dict) or "token" not in body:
        raise TrustedPublishingError(
            f"{base} refused the CI's identity ({response.status_code}): {_reason(response)}"
        )
    return str(body["token"])


def burn(url: str, token: str, http: httpx.Client) -> None:
    """End the minted token now; it would expire by itself within minutes anyway."""
    with contextlib.suppress(httpx.HTTPError):
        http.post(f"{url.rstrip('/')}/_/oidc/burn-token", json={"token": token})
