"""Turn files copied into (or removed from) the folder into indexer changes within a second.

The watcher asks the kernel only for the events that mean "a file is complete" or "a file is
gone": a file closed after writing, a rename into or out of a name, a delete. Opens, reads and
closes without writing are never delivered, so the index's own reads (and anyone else's) cost
nothing and cannot wake it. A file that only appears (a hard link, a file inside a directory
moved in) is looked at once nothing has happened to it for ``SETTLE_SECONDS``. A directory
that appears is watched from then on, and what it already holds is reported as created (a file
written into it before its watch began sends no close): such a file, already holding bytes, is
looked at as soon as nothing more happens to it for ``QUIET_SECONDS``; if it is still being
written, its next write puts it back to the settle time (and its close makes it complete).
A worker thread sleeps until something is due, then hands the batch to the indexer, which
confirms what is really on disk (and that an archive reads to its end) before changing a page.

The state folder (``.skypi`` inside the folder by default) is not watched: every page write
there would wake the watcher for nothing (several events per file written: about a third of the
server's CPU time per upload), and each of its thousands of folders would cost a watch at start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT, BaseObserver
from watchdog.observers.inotify import InotifyFullEmitter, InotifyObserver, InotifyWatchGroup
from watchdog.observers.inotify_c import InotifyFD

from skypi.core.errors import InvalidDistribution
from skypi.core.keys import METADATA_SUFFIX, PACKAGES_PREFIX
from skypi.indexer.service import Change, Indexer, Landed, project_of_key
from skypi.store.local import LocalStore

log = logging.getLogger("skypi.watch")
QUIET_SECONDS = 0.1  # batch what lands together
SETTLE_SECONDS = 2.0  # a file that appeared with no close: wait until nothing touches it
# A file whose indexing raised (not a bad archive: that is set aside at once) is looked at again
# after each of these waits, then left alone: a fault never keeps the watcher busy for ever.
RETRY_SECONDS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
WANTED = [
    DirCreatedEvent,
    FileClosedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileDeletedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
]


class FolderWatcher(FileSystemEventHandler):
    def __init__(self, store: LocalStore, indexer: Indexer) -> None:
        self.store, self.indexer = store, indexer
        self._root = str(store.packages_dir) + os.sep
        self._state = str(store.state_dir) + os.sep  # inside the folder by default
        self._pending: dict[str, tuple[float, bool]] = {}  # key -> (due, complete)
        self._lock = threading.Condition()
        self._stop = False
        self._rescan = False
        self._attempts: dict[str, int] = {}  # key -> retries so far (only while it fails)
        self.given_up: list[str] = []  # keys whose indexing failed every time
        self._new_dirs: dict[str, float] = {}  # directory -> when it appeared
        self._observer: Any = None
        self._worker = threading.Thread(target=self._run, name="skypi-watch", daemon=True)

    def key_for(self, path: str | bytes) -> str | None:
        """The key of a distribution path in the folder; cheap string checks first, since
        every event of the state folder (inside the folder by default) passes here."""
        text = os.fsdecode(path)
        if not text.startswith(self._root) or text.startswith(self._state):
            return None
        rel = text[len(self._root) :]
        if not rel or rel.startswith(".") or f"{os.sep}." in rel or rel.endswith(METADATA_SUFFIX):
            return None
        return PACKAGES_PREFIX + rel.replace(os.sep, "/")

    def _note(self, path: str | bytes, complete: bool, *, created: bool = False) -> None:
        key = self.key_for(path)
        if key is None or os.path.islink(path):
            return  # a symlink is not indexed (start-up and reindex do not list one either)
        now = time.monotonic()
        found = created and self._found_in_new_dir(os.fsdecode(path), now)
        with self._lock:
            _, was_complete = self._pending.get(key, (0.0, False))
            if complete or was_complete:
                self._pending[key] = (now + QUIET_SECONDS, True)
            else:
                self._pending[key] = (now + (QUIET_SECONDS if found else SETTLE_SECONDS), False)
            self._lock.notify()

    def _found_in_new_dir(self, path: str, now: float) -> bool:
        """Whether ``path`` was reported by the scan of a directory that just appeared and
        already holds bytes: written before the directory's watch began, so no close of it
        may ever come."""
        with self._lock:
            for folder, since in list(self._new_dirs.items()):
                if now - since > SETTLE_SECONDS:
                    del self._new_dirs[folder]
            fresh = os.path.dirname(path) in self._new_dirs
        try:
            return fresh and os.lstat(path).st_size > 0
        except OSError:
            return False

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, DirMovedEvent):
            # Matched moves inside the tree arrive as one event per file; a directory
            # moved out leaves no trace of what it held: look at the whole folder again.
            if event.src_path and self.key_for(event.src_path) is not None:
                with self._lock:
                    self._rescan = True
                    self._lock.notify()
            return
        if isinstance(event, DirCreatedEvent):
            with self._lock:
                self._new_dirs[os.fsdecode(event.src_path)] = time.monotonic()
            return
        if event.is_directory:
            return
        if isinstance(event, FileMovedEvent):
            if event.src_path:
                self._note(event.src_path, complete=True)
            if event.dest_path:
                self._note(event.dest_path, complete=True)
        elif isinstance(event, FileClosedEvent | FileDeletedEvent):
            self._note(event.src_path, complete=True)
        elif isinstance(event, FileCreatedEvent):
            self._note(event.src_path, complete=False, created=True)
        elif isinstance(event, FileModifiedEvent):
            self._note(event.src_path, complete=False)

    @property
    def watches_state(self) -> bool:
        """Whether the state folder is watched too (watchdog's inner parts are not those this
        was written against): then every page write wakes the watcher."""
        return not _hookable()

    def start(self) -> None:
        """Watch the folder: when this returns, every folder's watch is set (watchdog sets
        them before its thread starts), so a file that lands from now on is seen."""
        # Full events: a file moved in from outside is a move (complete), not a creation.
        self._observer = _observer(os.fsencode(str(self.store.state_dir)))
        self._observer.schedule(
            self, str(self.store.packages_dir), recursive=True, event_filter=WANTED
        )
        self._observer.start()
        self._worker.start()

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._worker.is_alive():
            self._worker.join(timeout=5)

    def _next_batch(self) -> tuple[list[str], bool] | None:
        """Sleep until something is due (not at all while nothing is pending)."""
        with self._lock:
            while not self._stop:
                now = time.monotonic()
                ready = sorted(k for k, (due, _) in self._pending.items() if due <= now)
                if ready or self._rescan:
                    for key in ready:
                        del self._pending[key]
                    rescan, self._rescan = self._rescan, False
                    return ready, rescan
                wait = min((due for due, _ in self._pending.values()), default=None)
                self._lock.wait(None if wait is None else max(0.0, wait - now))
        return None

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            ready, rescan = batch
            # an upload to this server, listed by it already: its own write's event
            ready = [key for key in ready if not self.indexer.echo(key)]
            if not ready and not rescan:
                continue
            try:
                if rescan:
                    from skypi.local.startup import reconcile

                    reconcile(self.store, self.indexer)
                # Landed means "look at this key": the indexer treats a missing one as gone.
                # Isolated: a project whose indexing raises does not stop the rest of the batch
                # (a bad archive never raises: the indexer sets it aside and logs why).
                changes: list[Change] = [Landed(key) for key in ready]
                outcome = self.indexer.apply(changes, isolate=True)
            except Exception:  # the root listing or the landing page could not be written
                log.exception("indexing %d changed files failed", len(ready))
                self._retry(ready, rescan)
                continue
            failed = {key for key in ready if _project(key) in outcome.failed}
            self._retry(sorted(failed), False)
            for key in set(ready) - failed:
                self._attempts.pop(key, None)

    def _retry(self, keys: list[str], rescan: bool) -> None:
        """Look at ``keys`` again later, each at most ``len(RETRY_SECONDS)`` more times (the
        waits grow); then leave it to the next start or ``skypi reindex``."""
        now = time.monotonic()
        with self._lock:
            self._rescan = self._rescan or rescan
            for key in keys:
                attempt = self._attempts.get(key, 0)
                if attempt >= len(RETRY_SECONDS):
                    self._attempts.pop(key, None)
                    self.given_up.append(key)
                    log.error(
                        "gave up indexing %s after %d attempts; the next start or "
                        "`skypi reindex` looks at it again",
                        self.store.path_for(key),
                        attempt + 1,
                    )
                    continue
                self._attempts[key] = attempt + 1
                self._pending.setdefault(key, (now + RETRY_SECONDS[attempt], True))
            self._lock.notify()


def _project(key: str) -> str | None:
    try:
        return project_of_key(key).project
    except (InvalidDistribution, ValueError):
        return None


@dataclass
class _WatchesBut(InotifyWatchGroup):
    """watchdog's recursive inotify watches, less those of one folder and all below it."""

    skip: bytes = b""

    def _skipped(self, path: bytes) -> bool:
        return bool(self.skip) and (path == self.skip or path.startswith(self.skip + b"/"))

    def _add_all_callbacks(self, path: bytes) -> None:
        if self._skipped(path):
            return
        self._add_callback(path)
        if not (self.is_recursive and os.path.isdir(path)):
            return
        for root, dirnames, _ in os.walk(path, followlinks=self.follow_symlink):
            dirnames[:] = [d for d in dirnames if not self._skipped(os.path.join(root, d))]
            for dirname in dirnames:
                folder = os.path.join(root, dirname)
                if self.follow_symlink or not os.path.islink(folder):
                    self._add_callback(folder)


class _EmitterBut(InotifyFullEmitter):
    def __init__(self, *args: Any, skip: bytes, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._skip = skip

    def on_thread_start(self) -> None:
        self._inotify = _WatchesBut(
            self._inotify_fd,
            os.fsencode(self.watch.path),
            is_recursive=self.watch.is_recursive,
            event_mask=self.get_event_mask_from_filter(),
            follow_symlink=self.watch.follow_symlink,
            skip=self._skip,
        )


class _ObserverBut(InotifyObserver):
    def __init__(self, skip: bytes) -> None:
        self._inotify_fd = InotifyFD()
        self._inotify_fd.start()
        BaseObserver.__init__(
            self,
            _EmitterBut,
            timeout=DEFAULT_OBSERVER_TIMEOUT,
            inotify_fd=self._inotify_fd,
            skip=skip,
        )


def _observer(skip: bytes) -> BaseObserver:
    """An inotify observer (full events) that does not watch ``skip``; watchdog's own, which
    watches everything, where its inner parts are not the ones this was written against."""
    if _hookable():
        return _ObserverBut(skip)
    log.warning("watching the state folder too (watchdog %s)", _watchdog_version())
    return InotifyObserver(generate_full_events=True)


_HOOKS = (
    (InotifyWatchGroup, "_add_all_callbacks"),
    (InotifyWatchGroup, "_add_callback"),
    (InotifyFullEmitter, "on_thread_start"),
    (InotifyFullEmitter, "get_event_mask_from_filter"),
)


def _hookable() -> bool:
    return all(hasattr(c, n) for c, n in _HOOKS)


def _watchdog_version() -> str:
    from watchdog.version import VERSION_STRING

    return VERSION_STRING
