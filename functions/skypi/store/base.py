"""The object-store port: what the indexer and the API need from S3 or a folder, and no more.

Semantics every adapter keeps (``tests/test_store_conformance.py`` checks them):

- ``put(..., if_none_match=True)`` creates or raises :class:`PreconditionFailed`;
- ``put(..., if_match=etag)`` replaces only that exact version, else :class:`PreconditionFailed`
  (also when the object is gone);
- a put is atomic: readers see the old bytes or the new bytes, never a mix;
- the ETag changes whenever the bytes change (equal bytes may keep it, as on S3);
- ``head`` returns None for a missing key, reads raise :class:`NotFound`;
- ``delete`` of a missing key is not an error; ``delete(..., if_match=etag)`` removes only
  that exact version, else raises :class:`PreconditionFailed` (also when the object is gone);
- ``list`` yields keys in lexicographic order;
- ``folders(prefix)`` yields, in lexicographic order, each distinct ``prefix + segment + "/"``
  that some object's key starts with (S3's ``CommonPrefixes`` with the delimiter ``/``): one
  request for the folders of a level, however many objects they hold;
- ``put(..., sha256=hex)`` stores the bytes only if they have that digest (S3 verifies it
  server-side; other adapters may trust the caller, who computed it from the same bytes).

Optional abilities, present only where the backend has them (check with ``isinstance``):
:class:`Versioned` (put an earlier version back), :class:`Presigning` (hand a client a
short-lived URL to the object itself), :class:`DirectUploads` and :class:`StreamedWrites`
(an object sent in parts, by a client or by this process). :func:`put_copies` writes the
same bytes under several keys, in one write where the backend can (a folder: one file,
linked under each name).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable


class NotFound(KeyError):
    """No object under that key."""


class PreconditionFailed(Exception):
    """A conditional write lost: someone else wrote first (S3 412)."""


class Unavailable(Exception):
    """Storage did not answer whole this time (a transfer reset or timed out part-way, or no
    answer after every retry): nothing is known of the object, so try again later. Not an
    ``OSError``: that a file cannot be read is a fact about the file, this is not."""


class EdgeWriteFailed(RuntimeError):
    """The edge's KeyValueStore could not be changed (after botocore's retries). Here, beside
    the other storage errors, so that code catching it needs no botocore (a tool install)."""


class UploadConflict(Exception):
    """A multipart upload met a concurrent write to its key while completing (S3 409
    ConditionalRequestConflict): it cannot complete, and has to start again."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime
    sha256: str | None = None  # hex, when the backend stored a whole-object SHA-256 checksum


Body = bytes | BinaryIO


class Store(Protocol):
    """A flat key space of immutable-per-version objects with conditional writes."""

    def head(self, key: str) -> ObjectInfo | None: ...

    def get(self, key: str) -> tuple[ObjectInfo, bytes]: ...

    def read_range(self, key: str, start: int, length: int) -> bytes: ...

    def open(self, key: str, start: int = 0) -> AbstractContextManager[BinaryIO]:
        """A forward-only stream of the object's bytes from offset ``start``."""
        ...

    def put(
        self,
        key: str,
        body: Body,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        sha256: str | None = None,
    ) -> ObjectInfo: ...

    def delete(self, key: str, *, if_match: str | None = None) -> None: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def folders(self, prefix: str) -> Iterator[str]: ...


def put_copies(store: Store, keys: Sequence[str], body: bytes) -> None:
    """``body`` under each of ``keys`` (unconditional puts, each atomic as :meth:`Store.put`
    is): by the store's own ``put_copies`` where its class has one (a folder writes the bytes
    once), else a put of each. A wrapper that forwards what it lacks (``__getattr__``) is
    asked for each put: the class is looked at, not the instance."""
    copies = getattr(type(store), "put_copies", None)
    if copies is not None:
        copies(store, keys, body)
        return
    for key in keys:
        store.put(key, body)


@runtime_checkable
class Located(Protocol):
    """A store whose objects are files someone can find by path (a folder)."""

    def path_for(self, key: str) -> Path: ...


@runtime_checkable
class Versioned(Protocol):
    """A store that keeps earlier versions of an object (a versioned S3 bucket)."""

    def restore_version(self, key: str, etag: str) -> bool:
        """Make the newest earlier version whose ETag is ``etag`` current again.

        Returns False when no such version exists (the original is lost to this store)."""
        ...


@runtime_checkable
class Presigning(Protocol):
    """A store whose objects a client can fetch directly, without this process in the way."""

    def presigned_get_url(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        content_encoding: str | None = None,
    ) -> str:
        """A GET of ``key`` for ``expires_in`` seconds, answered with these Content-Type and
        Content-Encoding (a negotiated page's) instead of the stored ones where given."""
        ...


@dataclass(frozen=True)
class SignedRequest:
    """A request a client may make straight to the store: this URL, with these headers."""

    method: str
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int = 0
    sha256: str | None = None  # hex; S3 wants it back at completion for a checksummed upload


@runtime_checkable
class DirectUploads(Protocol):
    """A store a client can upload to directly (S3 presigned PUTs and multipart uploads), so
    big files never pass through this process. Every upload is create-only."""

    def presigned_put(
        self, key: str, sha256: str, size: int, marker: str, expires_in: int
    ) -> SignedRequest: ...

    def start_multipart(self, key: str, marker: str) -> str: ...

    def marker_of(self, key: str) -> str | None:
        """The ``marker`` the object at ``key`` was uploaded with (which upload stored it)."""
        ...

    def presigned_part(
        self, key: str, upload_id: str, number: int, sha256: str, size: int, expires_in: int
    ) -> SignedRequest:
        """A PUT of part ``number``, bound to its ``size`` and ``sha256``."""
        ...

    def uploaded_parts(self, key: str, upload_id: str) -> list[Part]: ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> None:
        """Raises :class:`PreconditionFailed` if the key exists (create-only), and
        :class:`UploadConflict` if a concurrent write to the key got in the way."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...


@runtime_checkable
class StreamedWrites(Protocol):
    """A store that takes an object in parts sent as they arrive (an S3 multipart upload made
    by this process): nothing is visible at the key until it is completed."""

    def start_multipart(self, key: str, marker: str) -> str: ...

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        """Part ``number`` of the upload, sent with its SHA-256 (the store checks it)."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> None:
        """Raises :class:`PreconditionFailed` if the key exists (create-only)."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None: ...
