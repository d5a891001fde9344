"""Turn files copied into (or removed from) the folder into indexer changes within a second.

watchdog delivers raw events; a worker thread waits until a path has been quiet for a moment
(so a file still being copied is not read half-way), then hands the batch to the indexer, which
confirms what is really on disk before changing a page.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore

log = logging.getLogger("skypi.watch")
QUIET_SECONDS = 0.25


class FolderWatcher(FileSystemEventHandler):
    def __init__(self, store: LocalStore, indexer: Indexer) -> None:
        self.store, self.indexer = store, indexer
        self._pending: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Any = None
        self._worker = threading.Thread(target=self._run, name="skypi-watch", daemon=True)

    def _note(self, path: str | bytes) -> None:
        text = path.decode() if isinstance(path, bytes) else path
        key = self.store.key_for(Path(text))
        if key is None or key.endswith(".metadata"):
            return
        with self._lock:
            self._pending[key] = time.monotonic()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        self._note(event.src_path)
        if event.event_type == "moved":
            self._note(event.dest_path)

    def start(self) -> None:
        self._observer = Observer()
        self._observer.schedule(self, str(self.store.packages_dir), recursive=True)
        self._observer.start()
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        self._worker.join(timeout=5)

    def _due(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            ready = [k for k, t in self._pending.items() if now - t >= QUIET_SECONDS]
            for key in ready:
                del self._pending[key]
        return ready

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            ready = self._due()
            if not ready:
                continue
            try:
                # Landed means "look at this key": the indexer treats a missing one as gone.
                self.indexer.apply([Landed(key) for key in sorted(ready)])
            except Exception:
                log.exception("indexing %d changed files failed; will retry", len(ready))
                with self._lock:
                    for key in ready:
                        self._pending.setdefault(key, time.monotonic() + 1.0)
