"""API tokens: random, shown once, stored only as a hash, with scopes and an optional project list.

Tokens carry 256 random bits, so a plain SHA-256 is a safe stored form (no password stretching is
needed for secrets nobody chose), and looking one up by its hash compares no secret bytes.

>>> token = new_token()
>>> token.startswith("skypi_") and len(token) > 40
True
>>> record = TokenRecord.create(token, name="ci", scopes={"upload"}, projects=None)
>>> record.allows(Scope.READ, "anything"), record.allows(Scope.ADMIN, None)
(True, False)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from packaging.utils import NormalizedName, canonicalize_name

from skypi.core.namespaces import covers, namespace_name

TOKEN_PREFIX: Final = "skypi_"  # noqa: S105 - a prefix, not a secret


class Scope(StrEnum):
    """What a token may do. A scope grants itself and the ones before it: admin can upload and
    read, upload can read. Its value is how token records and the edge's rules spell it."""

    READ = "read"
    UPLOAD = "upload"
    ADMIN = "admin"


SCOPES: Final = tuple(Scope)
_RANK: Final = {scope: rank for rank, scope in enumerate(SCOPES)}
# CloudFront KeyValueStore, which the edge reads tokens from: a key of at most 512 bytes, a
# value of at most 1 KB, 5 MB per store (Amazon CloudFront Developer Guide, "Quotas on
# KeyValueStore" and "File format for key-value pairs").
EDGE_MAX_KEY_BYTES: Final = 512
EDGE_MAX_VALUE_BYTES: Final = 1024
EDGE_MAX_STORE_BYTES: Final = 5 * 1024 * 1024


class TokenTooLarge(ValueError):
    """A token whose edge record would not fit a KeyValueStore value."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# The one reading of a Basic header, on both edges: HTTP's optional whitespace (space, tab)
# around it and its value, scheme in any ASCII case, canonical padded base64, strict UTF-8.
_OWS: Final = " \t"
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) from a Basic ``Authorization`` header; None if missing or malformed.

    >>> basic_credentials("Basic " + base64.b64encode(b"alice:s3cret").decode())
    ('alice', 's3cret')
    >>> basic_credentials("Basic YWxpY2U6czNjcmV0"[:-1]), basic_credentials("Basic \xe9")
    (None, None)
    """
    if not header:
        return None
    scheme, _, value = header.strip(_OWS).partition(" ")
    value = value.strip(_OWS)
    if not (scheme.isascii() and scheme.lower() == "basic") or not value:
        return None
    if len(value) % 4 or not _BASE64.fullmatch(value):
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def credentials_from_header(header: str | None) -> str | None:
    """The token in a Basic ``Authorization`` header: the password, or the username when the
    password is empty and the username is a token (``https://TOKEN@host``). None when there is
    none: then the answer is 401, which is what makes pip ask its keyring for the password of
    ``https://__token__@host``.

    >>> credentials_from_header("Basic " + base64.b64encode(b"__token__:skypi_x").decode())
    'skypi_x'
    >>> credentials_from_header("Basic " + base64.b64encode(b"__token__:").decode()) is None
    True
    >>> credentials_from_header("Basic !!!") is None
    True
    """
    pair = basic_credentials(header)
    if pair is None:
        return None
    username, password = pair
    if password:
        return password
    return username if username.startswith(TOKEN_PREFIX) else None


def user_key(username: str) -> str:
    """Where an htpasswd user's record is kept (the same table, another key space)."""
    return hashlib.sha256(f"htpasswd-user:{username}".encode()).hexdigest()


# bcrypt hashes the first 72 bytes of a password. `htpasswd -B` (Apache) and pypiserver
# (passlib) hashed longer passwords by those bytes; the bcrypt library refuses them instead.
BCRYPT_MAX_PASSWORD_BYTES: Final = 72
_BCRYPT_HASH: Final = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")


def bcrypt_password(password: str) -> bytes:
    """The bytes bcrypt compares for ``password``: its UTF-8, cut at 72 bytes, as the htpasswd
    file's hash was made from them, so a longer password works as it did with pypiserver.

    >>> len(bcrypt_password("é" * 40)), bcrypt_password("pw")
    (72, b'pw')
    """
    return password.encode("utf-8", "surrogatepass")[:BCRYPT_MAX_PASSWORD_BYTES]


def check_htpasswd_entry(username: str, bcrypt_hash: str) -> str:
    """The hash of an htpasswd line, with Apache's ``$2y$`` read as the same algorithm's
    ``$2b$``; ValueError says why the line cannot be a user of this index.

    >>> check_htpasswd_entry("alice", "$2y$05$" + "a" * 53)[:7]
    '$2b$05$'
    >>> check_htpasswd_entry("alice", "$2y$05$short")
    Traceback (most recent call last):
    ValueError: not a bcrypt hash (htpasswd -B writes $2y$, a cost and 53 characters)
    """
    if not username or username == "__token__" or not username.isprintable():
        raise ValueError("the user name must be printable, and not __token__")
    if not bcrypt_hash.startswith(("$2a$", "$2b$", "$2y$")):
        raise ValueError("only bcrypt htpasswd entries can be imported (htpasswd -B)")
    if not _BCRYPT_HASH.fullmatch(bcrypt_hash):
        raise ValueError("not a bcrypt hash (htpasswd -B writes $2y$, a cost and 53 characters)")
    return bcrypt_hash.replace("$2y$", "$2b$", 1)


def is_user_login(username: str, password: str) -> bool:
    """Credentials of an htpasswd user rather than a token (``__token__`` or a bare token)."""
    return (
        bool(password)
        and username not in {"", "__token__"}
        and not password.startswith(TOKEN_PREFIX)
    )


# A skypi token; or a long run of the characters secrets are written in, mixing upper and lower
# case and digits as random text does (other indexes' tokens, API keys, a password pasted into
# the wrong field), unlike names and paths: what must never reach a log line.
_TOKEN_LIKE: Final = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]+", re.IGNORECASE)
_RANDOM_LIKE: Final = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")


def _looks_random(text: str) -> bool:
    return (
        any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    )


def redact(text: str) -> str:
    """``text`` with anything that looks like a token replaced: the one rule for logging what
    a client sent (a username, a header, a path), whatever field it came in.

    >>> redact("alice"), redact("skypi_4Jd9-x2"), redact("pypi-AgEIcHlwaS5vcmcCJGE2ZjY4MjUy")
    ('alice', 'skypi_…', '…(33 characters redacted)')
    >>> redact("indexed packages/a-very-long-project-name/a_very_long_project_name-1.0.tar.gz")
    'indexed packages/a-very-long-project-name/a_very_long_project_name-1.0.tar.gz'

    What it leaves is left alone the next time (a line may pass through it twice):

    >>> once = redact("GET /simple/?token=skypi_4Jd9-x2&k=pypi-AgEIcHlwaS5vcmcCJGE2ZjY4MjUy")
    >>> once, redact(once) == once
    ('GET /simple/?token=skypi_…&…(35 characters redacted)', True)
    """
    text = _TOKEN_LIKE.sub(f"{TOKEN_PREFIX}…", text)
    return _RANDOM_LIKE.sub(
        lambda m: (
            f"…({len(m.group())} characters redacted)" if _looks_random(m.group()) else m.group()
        ),
        text,
    )


@dataclass(frozen=True)
class TokenRecord:
    """What is stored for a token: never the token itself."""

    id: str
    hash: str
    name: str
    scopes: frozenset[Scope]
    projects: frozenset[NormalizedName] | None  # None: every project
    created: datetime
    expires: datetime | None = None
    user: str | None = None  # an htpasswd user (uploads only), not a token
    password_hash: str | None = None  # that user's bcrypt hash, as htpasswd had it
    # Minted by Trusted Publishing: the publisher's id and the token claims that matched (audit).
    publisher: str | None = None
    claims: dict[str, str] | None = field(default=None, hash=False, compare=False)
    # PEP 752 namespaces the token is limited to (beside ``projects``): ``acme`` takes ``acme``
    # and every ``acme-*`` project. None: not limited by namespace.
    namespaces: frozenset[NormalizedName] | None = None

    @classmethod
    def create(
        cls,
        token: str,
        *,
        name: str,
        scopes: Collection[str],
        projects: set[str] | None,
        expires: datetime | None = None,
        at_edge: bool = True,
        namespaces: set[str] | None = None,
    ) -> TokenRecord:
        """A new token's record; ``at_edge``: it is read at the edge, so its edge record
        must fit a KeyValueStore value (:class:`TokenTooLarge` if not). ValueError for a
        scope or a namespace that is none."""
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            raise ValueError(f"scopes must be among {', '.join(SCOPES)}; got {sorted(scopes)}")
        digest = hash_token(token)
        names = frozenset(canonicalize_name(p) for p in projects) if projects else None
        spaces = frozenset(namespace_name(n) for n in namespaces) if namespaces else None
        granted = frozenset(Scope(s) for s in scopes)
        record = cls(digest[:12], digest, name, granted, names, datetime.now(UTC), expires)
        record = replace(record, namespaces=spaces)
        if at_edge:
            record.check_fits_edge()
        return record

    @classmethod
    def for_user(
        cls,
        username: str,
        bcrypt_hash: str,
        *,
        scopes: Collection[str],
        projects: set[str] | None,
    ) -> TokenRecord:
        """An htpasswd entry, imported from pypiserver: Basic user and password for uploads."""
        check_htpasswd_entry(username, bcrypt_hash)
        record = cls.create(  # users upload only: they never reach the edge
            f"user:{username}",
            name=f"htpasswd user {username}",
            scopes=scopes,
            projects=projects,
            at_edge=False,
        )
        key = user_key(username)
        return replace(record, id=key[:12], hash=key, user=username, password_hash=bcrypt_hash)

    @property
    def principal(self) -> str:
        """Who this is to a namespace's grants (PEP 752): a trusted publisher's minted token is
        its publisher, an htpasswd user its name, any other token itself (by its id).

        >>> now = datetime.now(UTC)
        >>> TokenRecord("0123456789ab", "h", "", frozenset({Scope.UPLOAD}), None, now).principal
        'token:0123456789ab'
        """
        if self.publisher:
            return f"publisher:{self.publisher}"
        return f"user:{self.user}" if self.user else f"token:{self.id}"

    def expired(self, now: datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def edge_value(self) -> str:
        """What the CloudFront KeyValueStore holds for this token (under its hash): the top
        scope's rank, the projects, the expiry in epoch seconds. Small, no secret.

        >>> TokenRecord("i", "h", "", frozenset({Scope.READ}), None, datetime.now(UTC)).edge_value()
        '{"s":0,"p":null,"e":null}'

        A token limited to namespaces lists them as ``n`` (and is limited: ``p`` is a list):

        >>> spaces = frozenset({"acme"})
        >>> TokenRecord("i", "h", "", frozenset({Scope.READ}), None, datetime.now(UTC),
        ...             namespaces=spaces).edge_value()
        '{"s":0,"p":[],"e":null,"n":["acme"]}'
        """
        limited = self.projects is not None or self.namespaces is not None
        value: dict[str, Any] = {
            "s": max(_RANK[s] for s in self.scopes),
            "p": sorted(self.projects or ()) if limited else None,
            "e": int(self.expires.timestamp()) if self.expires else None,
        }
        if self.namespaces is not None:
            value["n"] = sorted(self.namespaces)
        return json.dumps(value, separators=(",", ":"))

    def check_fits_edge(self) -> None:
        """Refuse a record the edge's KeyValueStore would refuse (its value is capped at
        1 KB): the token would work in the API and be denied at the edge forever.

        >>> many = {f"project-number-{i}" for i in range(60)}
        >>> try:
        ...     TokenRecord.create(new_token(), name="ci", scopes={"read"}, projects=many)
        ... except TokenTooLarge as exc:
        ...     print(str(exc)[:67])
        A token limited to 60 projects needs an edge record of 1,212 bytes,
        """
        size = len(self.edge_value().encode())
        if size > EDGE_MAX_VALUE_BYTES:
            count = len(self.projects or ()) + len(self.namespaces or ())
            raise TokenTooLarge(
                f"A token limited to {count} projects needs an edge record of {size:,} bytes, "
                f"and CloudFront's KeyValueStore takes at most {EDGE_MAX_VALUE_BYTES:,}: limit "
                "it to fewer projects (make several tokens), or to none."
            )

    def allows(self, scope: Scope, project: str | None) -> bool:
        """Whether this token may do ``scope`` on ``project`` (None: not about one project):
        a limited token, on its projects and on those its namespaces cover."""
        if max(_RANK[s] for s in self.scopes) < _RANK[scope]:
            return False
        limited = self.projects is not None or self.namespaces is not None
        if not limited or project is None:
            return not limited or scope == Scope.READ
        name = canonicalize_name(project)
        return name in (self.projects or ()) or any(covers(n, name) for n in self.namespaces or ())

    def may(self, scope: Scope) -> bool:
        """Whether this token has ``scope`` on at least one project: what can be checked from
        the headers alone, before an upload's body (which names the project) is read."""
        return max(_RANK[s] for s in self.scopes) >= _RANK[scope]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hash": self.hash,
            "name": self.name,
            "scopes": sorted(self.scopes, key=_RANK.__getitem__),
            "projects": sorted(self.projects) if self.projects is not None else None,
            "created": self.created.isoformat(),
            "expires": self.expires.isoformat() if self.expires else None,
            **({"user": self.user, "password_hash": self.password_hash} if self.user else {}),
            **({"publisher": self.publisher, "claims": self.claims} if self.publisher else {}),
            **({"namespaces": sorted(self.namespaces)} if self.namespaces is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenRecord:
        projects = data.get("projects")
        return cls(
            id=data["id"],
            hash=data["hash"],
            name=data.get("name", ""),
            scopes=frozenset(Scope(s) for s in data["scopes"]),
            projects=frozenset(canonicalize_name(p) for p in projects)
            if projects is not None
            else None,
            created=datetime.fromisoformat(data["created"]),
            expires=datetime.fromisoformat(data["expires"]) if data.get("expires") else None,
            user=data.get("user"),
            password_hash=data.get("password_hash"),
            publisher=data.get("publisher"),
            claims=data.get("claims"),
            namespaces=frozenset(canonicalize_name(n) for n in data["namespaces"])
            if data.get("namespaces") is not None
            else None,
        )
