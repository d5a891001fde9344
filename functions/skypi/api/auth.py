"""Checking Basic credentials against token records: :class:`AuthRequired` when missing,
:class:`AuthFailure` when not enough (their statuses are in :mod:`skypi.api.errors`)."""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime

from skypi.core.errors import AuthFailure, AuthRequired
from skypi.core.tokens import (
    Scope,
    TokenRecord,
    basic_credentials,
    bcrypt_password,
    check_htpasswd_entry,
    credentials_from_header,
    hash_token,
    is_user_login,
    redact,
    user_key,
)
from skypi.store.tokens import TokenStore

log = logging.getLogger("skypi.auth")


class Authenticator:
    """Tokens (``__token__`` and the token as password) for everything; imported htpasswd users
    (their own name and password) for uploads and admin, never for reads."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def identify(self, header: str | None, *, tokens_only: bool = False) -> TokenRecord:
        pair = basic_credentials(header)
        # No password and no token for a username (pip sends ``__token__:`` for
        # ``https://__token__@host``): 401, so the client asks its keyring or the user.
        if pair is None or (not pair[1] and credentials_from_header(header) is None):
            raise AuthRequired(
                "Authentication required: send a skypi token as the password "
                "(username __token__). Create one with 'skypi token create'.",
            )
        username, password = pair
        if is_user_login(username, password):
            return self._user(username, password, tokens_only)
        digest = hash_token(password or username)
        record = self.tokens.find(digest)
        if (
            record is None
            or record.user is not None
            or not hmac.compare_digest(record.hash, digest)
        ):
            log.warning("rejected an unknown or revoked token")  # never the token itself
            raise AuthFailure("Invalid or revoked token.")
        if record.expired(datetime.now(UTC)):
            log.warning("rejected expired token %s", record.id)
            raise AuthFailure("Expired token: create a new one with 'skypi token create'.")
        return record

    def _user(self, username: str, password: str, tokens_only: bool) -> TokenRecord:
        if tokens_only:
            raise AuthFailure(
                "Reads take a skypi token, not a password: create one with "
                "'skypi token create --scope read'.",
            )
        record = self.tokens.find(user_key(username))
        if record is None or not record.password_hash:
            log.warning("rejected a login for unknown user %r", redact(username))
            raise AuthFailure("Invalid username or password.")
        if not _password_matches(
            hashlib.sha256(password.encode()).digest(), password, record.password_hash
        ):
            log.warning("rejected a wrong password for user %r", redact(username))
            raise AuthFailure("Invalid username or password.")
        return record

    def require(
        self, header: str | None, scope: Scope, project: str | None, *, tokens_only: bool = False
    ) -> TokenRecord:
        record = self.identify(header, tokens_only=tokens_only)
        if not record.allows(scope, project):
            log.warning("token %s lacks %s on %s", record.id, scope, project or "the index")
            where = f" for project {project!r}" if project else ""
            raise AuthFailure(f"The given token isn't allowed to {scope}{where}.")
        return record


_VERIFIED: dict[tuple[bytes, str], bool] = {}  # (sha256 of the password, bcrypt hash) -> ok


def _password_matches(digest: bytes, password: str, bcrypt_hash: str) -> bool:
    """bcrypt is slow by design and twine sends the same password for every file of an upload,
    so results are remembered, keyed by a digest (never by the password itself)."""
    import bcrypt

    known = _VERIFIED.get((digest, bcrypt_hash))
    if known is not None:
        return known
    try:
        normalized = check_htpasswd_entry("user", bcrypt_hash)
        result = bool(bcrypt.checkpw(bcrypt_password(password), normalized.encode()))
    except ValueError as exc:  # a record stored before its hash was checked on import
        log.warning("a user's stored password hash is unusable: %s", exc)
        result = False
    if len(_VERIFIED) > 1024:
        _VERIFIED.clear()
    _VERIFIED[(digest, bcrypt_hash)] = result
    return result
