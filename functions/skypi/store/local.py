"""The local-folder adapter: ``packages/…`` keys live in the user's folder, everything else
(pages, tokens) in a state folder, by default ``<folder>/.skypi``.

Conditional writes are atomic across threads and processes: the body goes to a temporary file
beside its target first, then an exclusive ``flock`` covers only the check and the ``rename``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from skypi.core.pages import PACKAGES_PREFIX
from skypi.store.base import Body, NotFound, ObjectInfo, PreconditionFailed

STATE_DIR_NAME = ".skypi"
TEMP_PREFIX = ".~skypi-"


def _check_key(key: str) -> list[str]:
    parts = key.split("/")
    if any(p in {"", ".", ".."} or p.startswith(TEMP_PREFIX) for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    return parts


class LocalStore:
    """A :class:`~skypi.store.base.Store` over two folders."""

    # Reading a small page from the page cache takes microseconds: the read path may call it
    # inline rather than pay a hop to a worker thread.
    inline_reads = True

    def __init__(self, packages_dir: Path, state_dir: Path | None = None) -> None:
        self.packages_dir = packages_dir.resolve()
        self.state_dir = (state_dir or self.packages_dir / STATE_DIR_NAME).resolve()
        self.packages_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.state_dir / ".lock"

    def path_for(self, key: str) -> Path:
        parts = _check_key(key)
        if key.startswith(PACKAGES_PREFIX):
            if any(p.startswith(".") for p in parts[1:]):
                raise ValueError(f"invalid package key {key!r}")
            return self.packages_dir.joinpath(*parts[1:])
        return self.state_dir.joinpath(*parts)

    def key_for(self, path: Path) -> str | None:
        """The key of a file in the packages folder, or None if it is not one of ours to index."""
        try:
            rel = path.resolve().relative_to(self.packages_dir)
        except ValueError:
            return None
        if not rel.parts or any(p.startswith(".") for p in rel.parts):
            return None
        return PACKAGES_PREFIX + "/".join(rel.parts)

    @staticmethod
    def _info(
        key: str, st: os.stat_result, body: bytes | None = None, path: Path | None = None
    ) -> ObjectInfo:
        """Package files are immutable: their stat identifies them. Pages and tokens are
        rewritten in place many times a second, where coarse file-system clocks and reused
        inodes could repeat a stat-based tag, so theirs is a hash of the bytes (as S3's is)."""
        if key.startswith(PACKAGES_PREFIX):
            etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"'
        else:
            if body is None:
                assert path is not None
                body = path.read_bytes()
            etag = f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
        moment = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        return ObjectInfo(key, st.st_size, etag, moment)

    def head(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            st = path.stat()
            return self._info(key, st, path=path) if not _is_dir(st) else None
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def get(self, key: str) -> tuple[ObjectInfo, bytes]:
        path = self.path_for(key)
        try:
            with path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                body = fh.read()
                return self._info(key, st, body), body
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(key) from exc

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with self.open(key, start) as fh:
            return fh.read(length)

    def open(self, key: str, start: int = 0) -> AbstractContextManager[BinaryIO]:
        path = self.path_for(key)
        try:
            fh = path.open("rb")
            fh.seek(start)
            return fh
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(key) from exc

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock_path.open("a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def put(
        self,
        key: str,
        body: Body,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        sha256: str | None = None,  # the caller hashed these very bytes; a disk has no check
    ) -> ObjectInfo:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        try:
            with tmp.open("wb") as out:
                if isinstance(body, bytes):
                    out.write(body)
                else:
                    shutil.copyfileobj(body, out, 1024 * 1024)
            with self._locked():
                current = self.head(key)
                if if_none_match and current is not None:
                    raise PreconditionFailed(key)
                if if_match is not None and (current is None or current.etag != if_match):
                    raise PreconditionFailed(key)
                os.replace(tmp, path)
                return self._info(key, path.stat(), body if isinstance(body, bytes) else None, path)
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        with self._locked():
            path.unlink(missing_ok=True)
        if key.startswith(PACKAGES_PREFIX):
            _prune_empty_dirs(path.parent, self.packages_dir)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        roots = []
        if PACKAGES_PREFIX.startswith(prefix) or prefix.startswith(PACKAGES_PREFIX):
            roots.append((self.packages_dir, PACKAGES_PREFIX))
        if not prefix.startswith(PACKAGES_PREFIX):
            roots.append((self.state_dir, ""))
        found: list[tuple[str, Path]] = []
        for root, key_prefix in roots:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                rel = Path(dirpath).relative_to(root).parts
                for name in filenames:
                    if name.startswith("."):
                        continue
                    key = key_prefix + "/".join((*rel, name))
                    if key.startswith(prefix):
                        found.append((key, Path(dirpath, name)))
        for key, path in sorted(found):
            try:
                yield self._info(key, path.stat(), path=path)
            except FileNotFoundError:
                continue


def _is_dir(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISDIR(st.st_mode)


def _prune_empty_dirs(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
