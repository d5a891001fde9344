"""PEP 740 attestations: the Sigstore signature verified offline, by ``pypi-attestations``.

For each attestation of an upload: the DSSE signature over the statement, the signing
certificate's chain to Sigstore's Fulcio, its signed certificate timestamp and the Rekor
transparency-log entry carried in the attestation, all against the Sigstore trust root that
ships with the ``sigstore`` library (offline: nothing is fetched); then that the certificate
names the trusted publisher whose token made the upload (the GitHub repository and workflow, or
the GitLab project and CI config file), and that the statement's subject is this file and its
SHA-256. The structural checks (:mod:`skypi.core.attestations`) run first and need no library.

The trust root is the one of the installed ``sigstore`` release: a key rotation by Sigstore
reaches the index with an update of that dependency.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from skypi.core.attestations import INVALID_ATTESTATIONS, publisher_of
from skypi.core.errors import UploadRejected

log = logging.getLogger("skypi.attest")


def _writable_home() -> None:
    """sigstore keeps its (offline) trust root under the user's data dirs; on Lambda only /tmp
    is writable."""
    if not os.access(os.path.expanduser("~"), os.W_OK):
        base = os.path.join(tempfile.gettempdir(), "skypi-sigstore")
        os.environ.setdefault("XDG_DATA_HOME", os.path.join(base, "data"))
        os.environ.setdefault("XDG_CACHE_HOME", os.path.join(base, "cache"))


def verify(
    attestations: Sequence[Mapping[str, Any]], filename: str, sha256: str, claims: Mapping[str, str]
) -> None:
    """Raise :class:`UploadRejected` unless every attestation verifies for this publisher."""
    identity = publisher_of(claims)
    if identity["kind"] not in {"GitHub", "GitLab"}:
        raise UploadRejected(
            INVALID_ATTESTATIONS
            + "attestations are verified for GitHub and GitLab trusted publishers only; "
            "re-run without them (uv publish --no-attestations)."
        )
    _writable_home()
    from pydantic import TypeAdapter, ValidationError
    from pypi_attestations import Attestation, AttestationError, Distribution, Publisher

    try:
        publisher = TypeAdapter(Publisher).validate_python(identity)
        dist = Distribution(name=filename, digest=sha256)
    except ValidationError as exc:
        raise UploadRejected(
            INVALID_ATTESTATIONS + f"cannot verify for this publisher or file: {exc}"
        ) from None
    for raw in attestations:
        try:
            attestation = Attestation.model_validate(raw)
            attestation.verify(publisher, dist, offline=True)
        except ValidationError as exc:
            raise UploadRejected(INVALID_ATTESTATIONS + f"malformed attestation: {exc}") from None
        except AttestationError as exc:
            log.warning("attestation for %s does not verify: %s", filename, exc)
            raise UploadRejected(
                INVALID_ATTESTATIONS + f"the attestation does not verify: {exc}"
            ) from None
