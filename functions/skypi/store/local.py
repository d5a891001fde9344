"""The local-folder adapter: ``packages/…`` keys live in the user's folder, everything else
(pages, tokens) in a state folder, by default ``<folder>/.skypi``.

Conditional writes are atomic across threads and processes: the body goes to a temporary file
beside its target first, then an exclusive ``flock`` covers only the check and the ``rename``.

Reads never leave the two folders: a key's file is opened with ``O_NOFOLLOW`` and then checked
to be the file its path names (``/proc/self/fd``; elsewhere the path is opened one folder at a
time), so a symbolic link anywhere below the root, to a file or to a folder, is treated as
absent, and only a regular file is ever read (a FIFO, device or socket is absent too, and
opening one never blocks). The state folder is private to its owner (0700) and
its files are created 0600: it holds the token hashes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import stat
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
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# What opening a key that is no regular file below its root raises (absent, linked, a folder,
# a socket): the key is absent.
_ABSENT = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EISDIR, errno.ENAMETOOLONG, errno.ENXIO}
)
# Folders on the way are only walked through (O_PATH), not opened for reading.
_WALK = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NONBLOCK  # O_NONBLOCK: opening a FIFO must not wait for a writer
# O_PATH only names the file (fstat works, reading does not): no inotify open/close event.
_LOOK = getattr(os, "O_PATH", _READ)
# Linux tells which file a descriptor really is; elsewhere the path is walked folder by folder.
_PROC_FD = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else ""


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
        self.state_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        state = self.state_dir.stat()
        if state.st_mode & 0o077 and state.st_uid == os.getuid():
            self.state_dir.chmod(PRIVATE_DIR_MODE)  # also a state folder made by older versions
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

    def _open_inside(self, key: str, flags: int) -> tuple[int, os.stat_result]:
        """A descriptor of ``key``'s file and its stat, or :class:`NotFound` when it is missing,
        not a regular file, or reached through a symbolic link anywhere below its root."""
        path = str(self.path_for(key))
        fd = -1
        try:
            if _PROC_FD:  # one open, then ask the kernel which file it really is
                fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
                # no link on the way; " (deleted)": replaced since it was opened (a page rewrite)
                inside = os.readlink(f"{_PROC_FD}/{fd}") in {path, f"{path} (deleted)"}
            else:
                fd = self._open_walking(path, flags)
                inside = True
            st = os.fstat(fd)
            if inside and stat.S_ISREG(st.st_mode):
                return fd, st
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            if exc.errno in _ABSENT:
                raise NotFound(key) from exc
            raise
        os.close(fd)
        raise NotFound(key)

    def _open_walking(self, path: str, flags: int) -> int:
        """Without ``/proc``: open one folder at a time below the root, none through a link."""
        state = str(self.state_dir) + os.sep
        root = state if path.startswith(state) else str(self.packages_dir) + os.sep
        *folders, name = path[len(root) :].split(os.sep)
        fd = os.open(root, _WALK)
        try:
            for folder in folders:
                parent, fd = fd, -1
                try:
                    fd = os.open(folder, _WALK | os.O_NOFOLLOW, dir_fd=parent)
                finally:
                    os.close(parent)
            return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        finally:
            if fd >= 0:
                os.close(fd)

    def _open_regular(self, key: str) -> tuple[BinaryIO, os.stat_result]:
        fd, st = self._open_inside(key, _READ)
        return open(fd, "rb"), st  # the caller closes it

    def head(self, key: str) -> ObjectInfo | None:
        try:
            if not key.startswith(PACKAGES_PREFIX):  # a page's tag is a hash of its bytes
                fh, st = self._open_regular(key)
                with fh:
                    return self._info(key, st, fh.read())
            # A file's tag is its stat: look (O_PATH) without opening it for reading, which a
            # folder watcher would see as an event.
            fd, st = self._open_inside(key, _LOOK)
            os.close(fd)
            return self._info(key, st)
        except NotFound:
            return None

    def get(self, key: str) -> tuple[ObjectInfo, bytes]:
        fh, st = self._open_regular(key)
        with fh:
            body = fh.read()
            return self._info(key, st, body), body

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with self.open(key, start) as fh:
            return fh.read(length)

    def open(self, key: str, start: int = 0) -> AbstractContextManager[BinaryIO]:
        fh, _ = self._open_regular(key)
        fh.seek(start)
        return fh

    @contextmanager
    def _locked(self) -> Iterator[None]:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        with open(os.open(self._lock_path, flags, PRIVATE_FILE_MODE), "r+b") as lock:
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
        private = not key.startswith(PACKAGES_PREFIX)
        if private:  # mkdir(parents=True) would give the folders between the default mode
            for folder in reversed(path.relative_to(self.state_dir).parents[:-1]):
                (self.state_dir / folder).mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        mode = PRIVATE_FILE_MODE if private else 0o666  # files to share keep the umask's mode
        try:
            with open(tmp, "xb", opener=lambda p, f: os.open(p, f, mode)) as out:
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
        except BaseException:
            tmp.unlink(missing_ok=True)
            if not private:  # a refused write leaves no empty project folder behind
                _prune_empty_dirs(path.parent, self.packages_dir)
            raise
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
                st = path.lstat()
                if stat.S_ISREG(st.st_mode):  # never a link, FIFO, device or socket
                    yield self._info(key, st, path=path)
            except FileNotFoundError:
                continue


def _prune_empty_dirs(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
