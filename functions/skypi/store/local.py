"""The local-folder adapter: distributions (``packages/…`` keys) live in the user's folder;
everything skypi derives from them (``.metadata`` files, pages, tokens) lives in a state folder,
by default ``<folder>/.skypi``, so the user's folder may be read-only.

Conditional writes are atomic across threads and processes: the body goes to a temporary file
beside its target first, then an exclusive ``flock`` covers only the check and the ``rename``.
The writer holds a ``flock`` on its temporary file until the rename, so a temporary file nobody
holds is the leftover of a crashed write (:meth:`LocalStore.sweep`).

Only regular files are ever opened, without blocking: a FIFO, socket or device in the folder
is neither listed nor readable (``O_NONBLOCK``, then ``fstat``), so it cannot stall a reader.

Reads never leave the two folders: a key's file is opened with ``O_NOFOLLOW`` and then checked
to be the file its path names (``/proc/self/fd``; elsewhere the path is opened one folder at a
time), so a symbolic link anywhere below the root, to a file or to a folder, is treated as
absent. The state folder is private to its owner (0700) and its files are created 0600: it
holds the token hashes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from skypi.core.keys import METADATA_SUFFIX, PACKAGES_PREFIX
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
# What ``link`` answers on a file system without hard links (or too many of them).
_NO_LINKS = frozenset({errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})
# Folders on the way are only walked through (O_PATH), not opened for reading.
_WALK = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NONBLOCK  # O_NONBLOCK: opening a FIFO must not wait for a writer
# O_PATH only names the file (fstat works, reading does not): no inotify open/close event.
_LOOK = getattr(os, "O_PATH", _READ)
# Linux tells which file a descriptor really is; elsewhere the path is walked folder by folder.
_PROC_FD = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else ""
log = logging.getLogger("skypi.store")

Fingerprint = tuple[int, int]
"""``(size, mtime_ns)`` of a file: what a restart trusts unchanged (see docs/local-index.md)."""
Found = list[tuple[str, str, os.stat_result]]  # (key, path, lstat) of each object
Paths = list[Path]


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
        self._packages = str(self.packages_dir)
        self._state = str(self.state_dir)
        self._lock_fd = -1  # opened once; the flock on it is taken for each check-and-rename
        self._thread_lock = threading.Lock()
        self._lock_pid = os.getpid()

    def path_for(self, key: str) -> Path:
        """Distributions live in the folder; their ``.metadata`` files, derived by the
        indexer, under ``<state>/packages/`` (the same relative path)."""
        return Path(self._path(key)[0])

    def _path(self, key: str) -> tuple[str, bool]:
        """:meth:`path_for` as text, and whether it lies in the (private) state folder."""
        parts = _check_key(key)
        if key.startswith(PACKAGES_PREFIX):
            if any(p.startswith(".") for p in parts[1:]):
                raise ValueError(f"invalid package key {key!r}")
            if key.endswith(METADATA_SUFFIX):
                return os.path.join(self._state, *parts), True
            return os.path.join(self._packages, *parts[1:]), False
        return os.path.join(self._state, *parts), True

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
        key: str, st: os.stat_result, body: bytes | None = None, path: str | Path | None = None
    ) -> ObjectInfo:
        """Package files are immutable: their stat identifies them. Pages and tokens are
        rewritten in place many times a second, where coarse file-system clocks and reused
        inodes could repeat a stat-based tag, so theirs is a hash of the bytes (as S3's is)."""
        if key.startswith(PACKAGES_PREFIX):
            etag = package_etag((st.st_size, st.st_mtime_ns))
        else:
            if body is None:
                assert path is not None
                with _open_regular(path, key) as fh:
                    body = fh.read()
            etag = f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
        moment = datetime.fromtimestamp(st.st_mtime, tz=UTC)
        return ObjectInfo(key, st.st_size, etag, moment)

    def _open_inside(self, key: str, flags: int) -> tuple[int, os.stat_result]:
        """A descriptor of ``key``'s file and its stat, or :class:`NotFound` when it is missing,
        not a regular file, or reached through a symbolic link anywhere below its root."""
        path = self._path(key)[0]
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

    def _open_file(self, key: str) -> tuple[BinaryIO, os.stat_result]:
        fd, st = self._open_inside(key, _READ)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st  # the caller closes it

    def head(self, key: str) -> ObjectInfo | None:
        """Only a regular file inside the folders is an object: a FIFO, socket, device,
        directory or anything reached through a link is none. A file that cannot be looked at
        is not absent: whatever else the system says (EACCES, EPERM: a folder on the way it
        cannot search, or no read permission for a page, as S3 answers 403; EIO, EMFILE, a
        stale NFS handle) is raised as the :class:`OSError` it is, so that the indexer keeps
        the entry it cannot check rather than unlisting a file that is still there."""
        try:
            if not key.startswith(PACKAGES_PREFIX):  # a page's tag is a hash of its bytes
                return self._read(key)[0]
            # A file's tag is its stat: look (O_PATH) without opening it for reading, which a
            # folder watcher would see as an event.
            fd, st = self._open_inside(key, _LOOK)
            os.close(fd)
            return self._info(key, st)
        except NotFound:
            return None

    def get(self, key: str) -> tuple[ObjectInfo, bytes]:
        return self._read(key)

    def _read(self, key: str) -> tuple[ObjectInfo, bytes]:
        # the descriptor itself, no file object: a page or a small wheel is read with two
        # system calls (and one more to close), where a buffered file asked three more
        fd, st = self._open_inside(key, _READ)
        try:
            body = _read_all(fd, st.st_size)
        finally:
            os.close(fd)
        return self._info(key, st, body), body

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with self.open(key, start) as fh:
            return fh.read(length)

    def open(self, key: str, start: int = 0) -> AbstractContextManager[BinaryIO]:
        fh, _ = self._open_file(key)
        fh.seek(start)
        return fh

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across this process's threads and every other process."""
        if self._lock_pid != os.getpid():  # a forked child shares no flock with its parent
            self._lock_pid, self._lock_fd = os.getpid(), -1
            self._thread_lock = threading.Lock()
        with self._thread_lock:
            if self._lock_fd < 0:
                flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                self._lock_fd = os.open(self._lock_path, flags, PRIVATE_FILE_MODE)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _folder_for(self, path: str, private: bool) -> None:
        """Make the folders above ``path``, the deepest first (one call when only it is new):
        private ones in the state folder (mkdir's ``parents`` would give the folders between
        the default mode)."""
        folder = os.path.dirname(path)
        if not private:
            os.makedirs(folder, exist_ok=True)
            return
        missing: list[str] = []
        while folder != self._state:
            try:
                os.mkdir(folder, PRIVATE_DIR_MODE)
                break
            except FileExistsError:
                break
            except FileNotFoundError:
                missing.append(folder)
                folder = os.path.dirname(folder)
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, PRIVATE_DIR_MODE)

    def put(
        self,
        key: str,
        body: Body,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        sha256: str | None = None,  # the caller hashed these very bytes; a disk has no check
    ) -> ObjectInfo:
        path, private = self._path(key)
        tmp = _temp_beside(path)
        renamed = False
        try:
            fd = self._create(tmp, path, private)
            with _closing(fd):
                fcntl.flock(fd, fcntl.LOCK_EX)  # "in use" until the rename
                if isinstance(body, bytes):
                    _write_all(fd, body)
                else:
                    with open(fd, "wb", closefd=False) as out:  # flushed when it ends
                        shutil.copyfileobj(body, out, 1024 * 1024)
                with self._locked():
                    if if_none_match or if_match is not None:
                        current = self.head(key)
                        if if_none_match and current is not None:
                            raise PreconditionFailed(key)
                        if if_match is not None and (current is None or current.etag != if_match):
                            raise PreconditionFailed(key)
                    os.replace(tmp, path)
                    renamed = True
                    written = body if isinstance(body, bytes) else None
                    # the file just renamed, by its descriptor: no lookup of its path
                    return self._info(key, os.fstat(fd), written, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if not private:  # a refused write leaves no empty project folder behind
                _prune_empty_dirs(Path(path).parent, self.packages_dir)
            raise
        finally:
            if not renamed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _create(self, tmp: str, path: str, private: bool) -> int:
        """A new temporary file ``tmp`` beside ``path``, its folders made if missing."""
        mode = PRIVATE_FILE_MODE if private else 0o666  # files to share keep the umask's mode
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            return os.open(tmp, flags, mode)
        except FileNotFoundError:  # the first file of its folder
            self._folder_for(path, private)
            return os.open(tmp, flags, mode)

    def put_copies(self, keys: Sequence[str], body: bytes) -> None:
        """``body`` under each of ``keys`` of one folder of the state folder (a page's HTML
        twins): written once to one temporary file, linked under a temporary name for each
        further key, then each renamed over its target, as :meth:`put` does. Each target is
        replaced atomically; a reader may see one key new and another still old, as between
        two puts. Writing the bytes once saves a file, and on ext4 a flush: renaming a new
        file over an existing one starts writing its data out (the file system's guard for
        replace-by-rename, ``auto_da_alloc``), once per file. Keys elsewhere, a subclass
        whose ``put`` is its own, or a file system without hard links: a put of each."""
        located = [self._path(key) for key in keys]
        folders = {(os.path.dirname(path), private) for path, private in located}
        one_folder = len(folders) == 1 and located[0][1]
        if (
            not one_folder
            or type(self).put is not LocalStore.put
            or not self._linked(located, body)
        ):
            for key in keys:
                self.put(key, body)

    def _linked(self, located: list[tuple[str, bool]], body: bytes) -> bool:
        """:meth:`put_copies` by links; False where the file system makes none (then each key
        is put on its own; no temporary file is left either way)."""
        paths = [path for path, _ in located]
        temps, renamed = [_temp_beside(paths[0])], 0
        try:
            with _closing(self._create(temps[0], paths[0], True)) as fd:
                fcntl.flock(fd, fcntl.LOCK_EX)  # "in use" until the renames (every name's)
                _write_all(fd, body)
                for path in paths[1:]:
                    temps.append(_temp_beside(path))
                    os.link(temps[0], temps[-1])
                with self._locked():
                    for tmp, path in zip(temps, paths, strict=True):
                        os.replace(tmp, path)
                        renamed += 1
            return True
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            return False
        finally:
            for tmp in temps[renamed:]:  # those not renamed
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        path = self.path_for(key)
        with self._locked():
            if if_match is not None:
                current = self.head(key)
                if current is None or current.etag != if_match:
                    raise PreconditionFailed(key)
            path.unlink(missing_ok=True)
        if key.startswith(PACKAGES_PREFIX):
            top = self.packages_dir
            if self.state_dir in path.parents:
                top = self.state_dir / PACKAGES_PREFIX.rstrip("/")
            _prune_empty_dirs(path.parent, top)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for key, path, st in sorted(self.scan(prefix)[0], key=lambda item: item[0]):
            try:
                yield self._info(key, st, path=path)
            except NotFound:
                continue

    def folders(self, prefix: str) -> Iterator[str]:
        """The directories of ``prefix``'s level whose names start as it does and that hold
        an object (an empty directory is no folder, as on S3); under ``packages/``, whose
        objects live in two folders, from the listing."""
        if prefix.startswith(PACKAGES_PREFIX) or PACKAGES_PREFIX.startswith(prefix):
            found = (key[len(prefix) :] for key, _, _ in self.scan(prefix)[0])
            yield from sorted({f"{prefix}{rest.split('/')[0]}/" for rest in found if "/" in rest})
            return
        head, _, start = prefix.rpartition("/")
        directory = os.path.dirname(self._path(f"{head}/_")[0]) if head else self._state
        try:
            with os.scandir(directory) as listing:
                entries = sorted((e for e in listing if e.name.startswith(start)), key=_name)
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            if entry.name[0] == "." or not entry.is_dir(follow_symlinks=False):
                continue
            if next(_walk(entry.path, set(), [], None), None) is not None:  # holds an object
                yield f"{head}/{entry.name}/" if head else f"{entry.name}/"

    def fingerprints(self, prefix: str = "") -> dict[str, Fingerprint]:
        """``key -> (size, mtime_ns)`` of every object under ``prefix``, from ``lstat`` alone."""
        return {key: (st.st_size, st.st_mtime_ns) for key, _, st in self.scan(prefix)[0]}

    def scan(self, prefix: str = "") -> tuple[Found, Paths]:
        """Every regular file that is an object under ``prefix`` (in no order), and the
        temporary files found on the way. Symlinks, FIFOs, sockets and devices are no objects;
        an unreadable directory is skipped with one log line."""
        roots: list[tuple[Path, str, tuple[str, bool] | None]] = []
        if PACKAGES_PREFIX.startswith(prefix) or prefix.startswith(PACKAGES_PREFIX):
            roots.append((self.packages_dir, PACKAGES_PREFIX, (METADATA_SUFFIX, False)))
            derived = self.state_dir / PACKAGES_PREFIX.rstrip("/")
            roots.append((derived, PACKAGES_PREFIX, (METADATA_SUFFIX, True)))
        if not prefix.startswith(PACKAGES_PREFIX):
            roots.append((self.state_dir, "", None))
        found: Found = []
        temps: Paths = []
        skip = {str(self.state_dir), str(self.state_dir / PACKAGES_PREFIX.rstrip("/"))}
        for root, key_prefix, suffix in roots:
            for rel, path, st in _walk(str(root), skip - {str(root)}, temps, suffix):
                key = key_prefix + rel
                if key.startswith(prefix):
                    found.append((key, path, st))
        return found, temps

    def sweep(self, temps: Paths) -> Paths:
        """Remove the temporary files of crashed writes (those no writer holds a lock on)."""
        removed: Paths = []
        for path in temps:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a write in progress, in this or another process
                path.unlink(missing_ok=True)
                removed.append(path)
            finally:
                os.close(fd)
        return removed


def package_etag(fingerprint: Fingerprint) -> str:
    """A distribution is trusted unchanged while its size and mtime are (as rsync's quick
    check); the inode is not part of it, so ``cp -a``/``rsync -a`` copies keep their tags."""
    size, mtime_ns = fingerprint
    return f'"{mtime_ns:x}-{size:x}"'


def _read_all(fd: int, size: int) -> bytes:
    """A regular file's bytes from its descriptor: ``size`` (its stat's) and one byte more
    are asked at once, and the reads go on to the end (a file that grew since is read whole)."""
    parts = []
    want = size + 1
    while chunk := os.read(fd, want):
        parts.append(chunk)
        want = 1024 * 1024
    return b"".join(parts) if len(parts) != 1 else parts[0]


def _temp_beside(path: str) -> str:
    return os.path.join(os.path.dirname(path), f"{TEMP_PREFIX}{uuid.uuid4().hex}")


def _write_all(fd: int, body: bytes) -> None:
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]


@contextmanager
def _closing(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _open_regular(path: str | Path, key: str) -> BinaryIO:
    """Open for reading only if ``path`` is a regular file. ``O_NONBLOCK`` makes opening a FIFO
    return at once instead of waiting for a writer; ``fstat`` on the open descriptor then
    decides, with no window for a swap between check and use."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise NotFound(key) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotFound(key)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _name(entry: os.DirEntry[str]) -> str:
    return f"{entry.name}/"  # as S3 orders its folders: ``a-b/`` before ``a/``


def _walk(
    root: str, skip: set[str], temps: Paths, suffix: tuple[str, bool] | None
) -> Iterator[tuple[str, str, os.stat_result]]:
    """Regular files below ``root`` as ``(relative posix path, path, lstat)``; with ``suffix``
    ``(s, keep)``, only names that end in ``s`` (``keep``) or do not (not ``keep``). Dot-names
    are not descended into (temporary files are collected into ``temps``). The directory
    entry's type (no system call) decides what to skip before any ``stat``."""
    pending = [(root, "")]
    while pending:
        directory, rel = pending.pop()
        try:
            with os.scandir(directory) as listing:
                entries = list(listing)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("skipping %s: %s", directory, exc.strerror or exc)
            continue
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                if name.startswith(TEMP_PREFIX):
                    temps.append(Path(entry.path))
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.path not in skip:
                        pending.append((entry.path, f"{rel}{name}/"))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue  # a symlink, FIFO, socket or device
                if suffix is not None and name.endswith(suffix[0]) != suffix[1]:
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                yield rel + name, entry.path, st


def _prune_empty_dirs(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
