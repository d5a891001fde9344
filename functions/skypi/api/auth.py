"""Checking Basic credentials against token records: 401 when missing, 403 when not enough."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from skypi.core.tokens import TokenRecord, credentials_from_header
from skypi.store.tokens import TokenStore

log = logging.getLogger("skypi.auth")
REALM_HEADER = {"WWW-Authenticate": 'Basic realm="skypi"'}


class AuthFailure(Exception):
    """401 (no usable credentials) or 403 (credentials that do not allow this)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    @property
    def headers(self) -> dict[str, str]:
        return REALM_HEADER if self.status == 401 else {}


class Authenticator:
    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def identify(self, header: str | None) -> TokenRecord:
        token = credentials_from_header(header)
        if token is None:
            raise AuthFailure(
                401,
                "Authentication required: send a skypi token as the password "
                "(username __token__). Create one with 'skypi token create'.",
            )
        record = self.tokens.lookup(token)
        if record is None:
            log.warning("rejected an unknown or revoked token")
            raise AuthFailure(403, "Invalid or revoked token.")
        if record.expired(datetime.now(UTC)):
            log.warning("rejected expired token %s", record.id)
            raise AuthFailure(403, "Expired token: create a new one with 'skypi token create'.")
        return record

    def require(self, header: str | None, scope: str, project: str | None) -> TokenRecord:
        record = self.identify(header)
        if not record.allows(scope, project):
            log.warning("token %s lacks %s on %s", record.id, scope, project or "the index")
            where = f" for project {project!r}" if project else ""
            raise AuthFailure(403, f"The given token isn't allowed to {scope}{where}.")
        return record
