"""Trusted Publishing: exchange a CI job's OIDC token for a short-lived upload token.

The protocol is PyPI's, which uv and the PyPA publish action speak to any upload host:
``GET /_/oidc/audience``, ``POST /_/oidc/mint-token`` ``{"token": JWT}``, and
``POST /_/oidc/burn-token`` ``{"token": minted}`` once the upload is done. Refusals are 422
``{"message", "errors": [{"code", "description"}]}`` as PyPI answers them, so the client shows
the reason.

The JWT is checked by PyJWT, never by hand: its signature against the issuer's published keys
(OpenID discovery, then the JWKS, both over https; cached, refetched at most every
:data:`JWKS_COOLDOWN` seconds for a key id it does not know, which is how rotation shows), then
``iss``, ``aud``, ``exp``/``nbf``/``iat`` with :data:`LEEWAY` seconds of clock skew, and each
``jti`` is exchanged once. Only issuers that a registered publisher names are ever contacted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from skypi.core.publishers import (
    LEEWAY,
    Match,
    NoMatch,
    claim_type_problem,
    match,
    remembered_until,
)
from skypi.core.tokens import Scope, TokenRecord, hash_token, new_token
from skypi.store.publishers import PublisherStore
from skypi.store.tokens import TokenStore

if TYPE_CHECKING:
    import jwt  # imported on first use: PyJWT and cryptography cost a cold start ~0.1 s

log = logging.getLogger("skypi.oidc")
LIFETIME: Final = timedelta(minutes=15)  # minted tokens, as PyPI's
# CI tokens live minutes (GitHub) to hours (GitLab's default is one); longer is refused, which
# also bounds how long an exchanged jti must be remembered.
MAX_OIDC_LIFETIME: Final = 24 * 3600
JWKS_COOLDOWN: Final = 30.0  # at most one forced JWKS refetch per issuer in this many seconds
JWKS_LIFESPAN: Final = 3600.0  # the fetched key set is trusted this long before a refetch
DISCOVERY_TTL: Final = 3600.0
MAX_JWT_BYTES: Final = 16 * 1024
MAX_BODY_BYTES: Final = 64 * 1024
MAX_DOCUMENT_BYTES: Final = 256 * 1024
FETCH_TIMEOUT: Final = 5.0
# Asymmetric only: a symmetric algorithm would treat the published key as a shared secret.
ALGORITHMS: Final = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")


class MintRefused(Exception):
    def __init__(self, code: str, description: str, status: int = 422) -> None:
        super().__init__(description)
        self.code, self.description, self.status = code, description, status

    def response(self) -> JSONResponse:
        body = {
            "message": "Token request failed",
            "errors": [{"code": self.code, "description": self.description}],
        }
        return JSONResponse(body, self.status)


@dataclass(frozen=True)
class Minted:
    token: str
    record: TokenRecord

    @property
    def expires(self) -> int:
        assert self.record.expires is not None
        return int(self.record.expires.timestamp())


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # an issuer's documents are fetched where it says they are


def _fetch_json(url: str, context: ssl.SSLContext) -> Any:
    if not url.startswith("https://"):
        raise ValueError(f"refusing to fetch keys over anything but https: {url}")
    opener = urllib.request.build_opener(
        _NoRedirects(), urllib.request.HTTPSHandler(context=context)
    )
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with opener.open(request, timeout=FETCH_TIMEOUT) as response:
        body = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError(f"{url} holds JSON nested too deeply") from None


class IssuerKeys:
    """Each issuer's signing keys, found by OpenID discovery and cached per process."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.context = context or ssl.create_default_context()
        self._clients: dict[str, tuple[float, jwt.PyJWKClient]] = {}
        self._lock = threading.Lock()

    def _client(self, issuer: str) -> jwt.PyJWKClient:
        with self._lock:
            cached = self._clients.get(issuer)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL:
            return cached[1]
        import jwt

        config = _fetch_json(f"{issuer}/.well-known/openid-configuration", self.context)
        if not isinstance(config, dict):
            raise ValueError(f"{issuer}'s OpenID configuration is not a JSON object")
        named, jwks_uri = config.get("issuer"), config.get("jwks_uri")
        if (
            not isinstance(named, str)
            or named.rstrip("/") != issuer
            or not isinstance(jwks_uri, str)
        ):
            raise ValueError(f"{issuer}'s OpenID configuration names another issuer or no keys")
        if not jwks_uri.startswith("https://"):
            raise ValueError(f"{issuer} publishes its keys over plain http: {jwks_uri}")
        client = jwt.PyJWKClient(
            jwks_uri,
            cache_jwk_set=True,
            lifespan=JWKS_LIFESPAN,
            timeout=FETCH_TIMEOUT,
            ssl_context=self.context,
            cooldown_duration=JWKS_COOLDOWN,
        )
        with self._lock:
            self._clients[issuer] = (time.monotonic(), client)
        return client

    def key_for(self, issuer: str, kid: str) -> jwt.PyJWK:
        return self._client(issuer).get_signing_key(kid)


def _invalid(description: str) -> MintRefused:
    return MintRefused("invalid-token", description)


class TokenExchange:
    def __init__(
        self,
        publishers: PublisherStore,
        tokens: TokenStore,
        audience: str,
        keys: IssuerKeys | None = None,
    ) -> None:
        self.publishers, self.tokens, self.audience = publishers, tokens, audience
        self.keys = keys or IssuerKeys()

    def mint(self, body: bytes) -> Minted:
        import jwt

        token = _token_field(body)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise _invalid(f"malformed OIDC token: {exc}") from None
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise _invalid("the OIDC token names no issuer (iss)")
        issuer = issuer.rstrip("/")
        candidates = [p for p in self.publishers.all() if p.issuer == issuer]
        if not candidates:  # before any fetch: unknown issuers are never contacted
            raise MintRefused(
                "invalid-publisher", f"no trusted publisher is registered for issuer {issuer!r}"
            )
        claims = self._verify(
            token, header, issuer, {p.audience(self.audience) for p in candidates}
        )
        found = match(candidates, claims)
        if isinstance(found, NoMatch):
            log.warning("refused an OIDC token: %s", found.detail)
            raise MintRefused("invalid-publisher", found.public)
        wanted = found.publisher.audience(self.audience)
        aud = claims["aud"]
        if wanted not in (aud if isinstance(aud, list) else [aud]):
            raise _invalid(f"the token's audience is {aud!r}; this publisher takes {wanted!r}")
        used = hashlib.sha256(f"{issuer}\0{claims['jti']}".encode()).hexdigest()
        if not self.publishers.use_once(used, remembered_until(claims["exp"])):
            log.warning("refused a replayed OIDC token for publisher %s", found.publisher.id)
            raise MintRefused(
                "invalid-reuse-token",
                "this OIDC token was exchanged already: each token works once; "
                "request a new one from the CI",
            )
        return self._mint(found)

    def _verify(
        self, token: str, header: dict[str, Any], issuer: str, audiences: set[str]
    ) -> dict[str, Any]:
        import jwt

        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise _invalid(f"unsupported signing algorithm {algorithm!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid("the OIDC token names no signing key (kid)")
        try:
            key = self.keys.key_for(issuer, kid)
        except (
            jwt.PyJWKClientConnectionError,
            jwt.exceptions.PyJWKSetError,
            OSError,
            ValueError,
            RecursionError,
        ) as exc:
            log.warning("could not fetch the keys of %s: %s", issuer, exc)
            raise MintRefused(
                "issuer-unavailable", f"could not fetch the signing keys of {issuer}", status=503
            ) from None
        except jwt.PyJWKClientError as exc:
            log.warning("no signing key %r for %s: %s", kid, issuer, exc)
            raise _invalid(f"the issuer {issuer} has no signing key {kid!r}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=sorted(audiences),
                issuer=[issuer, issuer + "/"],
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise _invalid("the OIDC token has expired") from None
        except jwt.InvalidAudienceError:
            aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
            shown = " or ".join(repr(a) for a in sorted(audiences))
            raise _invalid(f"the token's audience is {aud!r}; this index expects {shown}") from None
        except jwt.ImmatureSignatureError:
            raise _invalid("the OIDC token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidSignatureError:
            raise _invalid("the OIDC token's signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise _invalid(f"invalid OIDC token: {exc}") from None
        if problem := claim_type_problem(claims):
            raise _invalid(problem)
        if claims["exp"] - time.time() > MAX_OIDC_LIFETIME:
            raise _invalid(f"the OIDC token lives too long (more than {MAX_OIDC_LIFETIME} s)")
        return claims

    def _mint(self, found: Match) -> Minted:
        token = new_token()
        publisher = found.publisher
        record = TokenRecord.create(
            token,
            name=f"trusted publisher {publisher.id} ({publisher.describe()})",
            scopes={Scope.UPLOAD},
            projects=set(publisher.projects),
            expires=datetime.now(UTC) + LIFETIME,
        )
        record = replace(record, publisher=publisher.id, claims=found.claims)
        self.tokens.add(record)
        log.info(
            "minted token %s for publisher %s (%s)",
            record.id,
            publisher.id,
            ", ".join(f"{k}={v}" for k, v in found.claims.items() if k != "jti"),
        )
        return Minted(token, record)

    def burn(self, body: bytes) -> None:
        """End a minted token now (uv calls this after publishing); the record stays (audit)."""
        token = _token_field(body)
        record = self.tokens.find(hash_token(token))
        if record is None or record.publisher is None:
            raise MintRefused("invalid-token", "not a token minted by trusted publishing")
        now = datetime.now(UTC)
        if not record.expired(now):
            self.tokens.add(replace(record, expires=now), overwrite=True)


def _token_field(body: bytes) -> str:
    if len(body) > MAX_BODY_BYTES:
        raise MintRefused("invalid-payload", "the request body is too large", status=413)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise MintRefused("invalid-payload", 'send JSON: {"token": "<OIDC token>"}') from None
    token = doc.get("token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise MintRefused("invalid-payload", 'send JSON: {"token": "<OIDC token>"}')
    if len(token) > MAX_JWT_BYTES:
        raise MintRefused("invalid-token", "the token is too large")
    return token


def add_routes(api: FastAPI, exchange: TokenExchange) -> None:
    @api.get("/_/oidc/audience")
    async def audience() -> dict[str, str]:
        """The audience a CI's OIDC token must be issued for."""
        return {"audience": exchange.audience}

    @api.post("/_/oidc/mint-token")
    async def mint_token(request: Request) -> Response:
        """Exchange a trusted publisher's OIDC token for an upload token (15 minutes)."""
        try:
            minted = await run_in_threadpool(exchange.mint, await _body(request))
        except MintRefused as exc:
            return exc.response()
        return JSONResponse({"success": True, "token": minted.token, "expires": minted.expires})

    @api.post("/_/oidc/burn-token")
    async def burn_token(request: Request) -> Response:
        """Revoke a minted token before it expires."""
        try:
            await run_in_threadpool(exchange.burn, await _body(request))
        except MintRefused as exc:
            return exc.response()
        return JSONResponse({"success": True})


async def _body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            break
    return body
