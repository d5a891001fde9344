"""Where a file fetched from elsewhere goes while its bytes arrive, before it is known to be the
file it should be: nothing is visible at its key until :meth:`commit`, given the SHA-256 the
caller computed from the same bytes; leaving the ``with`` block without it leaves nothing.

- :class:`SpooledSink` (any store): a temporary file (in memory up to 8 MB), then one
  create-only put.
- :class:`MultipartSink` (a store with :class:`~skypi.store.base.StreamedWrites`, S3): a
  multipart upload, one part of :data:`PART_BYTES` in memory at a time, whatever the file's
  size. S3 makes an object of it only at CompleteMultipartUpload (create-only here); an
  upload left incomplete is aborted, and the bucket's lifecycle rule removes any a crash
  leaves (docs/views.md).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any, Final, Protocol

from skypi.store.base import Part, PreconditionFailed, Store, StreamedWrites

MiB: Final = 1024 * 1024
# S3: a part is 5 MiB to 5 GiB (the last one smaller) and an upload has at most 10,000
# parts (Amazon S3 User Guide, "Amazon S3 multipart upload limits"): 8 MiB parts hold up to
# 78 GiB, past any file a view fetches (UpstreamLimits.max_file_bytes, 4 GiB).
PART_BYTES: Final = 8 * MiB
MIN_PART_BYTES: Final = 5 * MiB
MAX_PARTS: Final = 10_000
SPOOL_BYTES: Final = 8 * MiB
FILL_MARKER: Final = "view-fill"


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def commit(self, sha256: str) -> bool:
        """Make the bytes written the object at the key (create-only): whether they were
        stored (False: another writer stored the key first)."""
        ...


class SpooledSink:
    def __init__(self, store: Store, key: str) -> None:
        self.store, self.key = store, key
        self.spool: Any = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by sink_for
            max_size=SPOOL_BYTES, dir=os.environ.get("TMPDIR")
        )

    def write(self, data: bytes, /) -> int:
        return int(self.spool.write(data))

    def commit(self, sha256: str) -> bool:
        self.spool.seek(0)
        try:
            self.store.put(self.key, self.spool, if_none_match=True, sha256=sha256)
        except PreconditionFailed:
            return False
        return True


class MultipartSink:
    """A multipart upload fed as bytes arrive: at most one part's bytes held at a time."""

    def __init__(self, store: StreamedWrites, key: str, part_bytes: int = PART_BYTES) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"a part is at least {MIN_PART_BYTES:,} bytes")
        self.store, self.key, self.part_bytes = store, key, part_bytes
        self.upload_id = store.start_multipart(key, FILL_MARKER)
        self.parts: list[Part] = []
        self.buffer = bytearray()
        self.completed = False

    def write(self, data: bytes, /) -> int:
        self.buffer += data
        while len(self.buffer) >= self.part_bytes:
            self._send(bytes(self.buffer[: self.part_bytes]))
            del self.buffer[: self.part_bytes]
        return len(data)

    def _send(self, data: bytes) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise ValueError(f"{self.key}: more than {MAX_PARTS:,} parts")
        number = len(self.parts) + 1
        self.parts.append(self.store.upload_part(self.key, self.upload_id, number, data))

    def commit(self, sha256: str) -> bool:
        if self.buffer or not self.parts:  # the last part may be smaller than the others
            self._send(bytes(self.buffer))
            self.buffer.clear()
        try:
            self.store.complete_multipart(self.key, self.upload_id, self.parts)
        except PreconditionFailed:  # stored by another fill first; this upload is aborted
            return False
        self.completed = True
        return True

    def abort(self) -> None:
        self.store.abort_multipart(self.key, self.upload_id)


@contextlib.contextmanager
def sink_for(store: Store, key: str, *, streamed: bool) -> Iterator[Sink]:
    """A sink for ``key``: a multipart upload where ``streamed`` and the store has them, else a
    spooled file. Nothing is left behind unless :meth:`Sink.commit` stored it."""
    if not (streamed and isinstance(store, StreamedWrites)):
        spooled = SpooledSink(store, key)
        with spooled.spool:
            yield spooled
        return
    multipart = MultipartSink(store, key)
    try:
        yield multipart
    finally:
        if not multipart.completed:
            multipart.abort()
