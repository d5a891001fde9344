"""The one hasher: every digest skypi computes of a file's bytes (an upload, a stored object,
a local file) is computed here, in one pass, whichever algorithms are wanted.

>>> import io
>>> size, found = hash_stream(io.BytesIO(b"abc"), ("sha256", "md5"))
>>> size, found["sha256"][:16], found["md5"]
(3, 'ba7816bf8f01cfea', '900150983cd24fb0d6963f7d28e17f72')
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import IO, Any, Final

CHUNK: Final = 1024 * 1024
# The names are the upload form's, without "_digest": md5, sha256, blake2_256.
_MAKERS: Final[dict[str, Callable[[], Any]]] = {
    "md5": lambda: hashlib.md5(usedforsecurity=False),
    "sha256": hashlib.sha256,
    "blake2_256": lambda: hashlib.blake2b(digest_size=32),
}


class Digests:
    """Several digests of the same bytes, fed chunk by chunk."""

    def __init__(self, names: Iterable[str] = ("sha256",)) -> None:
        self._hashers = {name: _MAKERS[name]() for name in names}
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def hexdigests(self) -> dict[str, str]:
        return {name: hasher.hexdigest() for name, hasher in self._hashers.items()}


def hash_stream(
    fh: IO[bytes],
    names: Iterable[str] = ("sha256",),
    *,
    check: Callable[[int], None] | None = None,
) -> tuple[int, dict[str, str]]:
    """Read ``fh`` to its end; (bytes read, hex digest by name). ``check`` is told the count
    after each chunk and may raise to stop (a size limit, a deadline)."""
    digests = Digests(names)
    while chunk := fh.read(CHUNK):
        digests.update(chunk)
        if check is not None:
            check(digests.size)
    return digests.size, digests.hexdigests()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
