"""Files a view did not wait for, filled in the background by ``skypi serve``: one fill per file
at a time (a request for a file being filled adds nothing), at most :data:`WORKERS` at once
and :data:`PENDING` waiting (past that a request adds nothing: the next one asks again), all
stopped with the server (a fill part-way stops at its next chunk and leaves nothing).

On AWS the view Lambda fills such a file in an asynchronous invocation of itself instead
(:mod:`skypi.api.viewhandler`).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Final

from skypi.indexer.views import FillRequest, Views

log = logging.getLogger("skypi.views")
# Fewer than the upstream's own slots (UpstreamLimits.concurrency, 4): pages still get some.
WORKERS: Final = 2
PENDING: Final = 64


class BackgroundFills:
    """A bounded pool of fills of one server's views; :meth:`submit` is ``Views.background``."""

    def __init__(self, views: Views, workers: int = WORKERS, pending: int = PENDING) -> None:
        self.views = views
        self.pending = pending
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="skypi-fill")
        self._lock = threading.Condition()
        self._running: set[FillRequest] = set()  # submitted, not done
        self.filled = 0  # files stored by this pool (a figure for logs and tests)

    def submit(self, request: FillRequest) -> bool:
        """Fill ``request``'s file unless it is being filled already, the pool is full or
        stopping; whether this call started a fill."""
        request = replace(request, stop=None)  # the one to compare with
        with self._lock:
            if self.stopping.is_set() or request in self._running:
                return False
            if len(self._running) >= self.pending:
                log.warning("view %s: too many fills waiting; %s not filled now", request.view,
                            request.filename)  # fmt: skip
                return False
            self._running.add(request)
            self.pool.submit(self._run, request)
        return True

    def _run(self, request: FillRequest) -> None:
        try:
            if self.views.fill(replace(request, stop=self.stopping)):
                with self._lock:
                    self.filled += 1
                log.info("view %s: %s filled", request.view, request.filename)
        except Exception as exc:  # logged; nothing stored; the next request asks again
            log.warning("view %s: %s not filled: %s", request.view, request.filename, exc)
        finally:
            with self._lock:
                self._running.discard(request)
                self._lock.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no fill is running or waiting; whether none is."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._running, timeout)

    def stop(self) -> None:
        """Stop taking fills, cancel those waiting, stop those running at their next chunk
        and wait for their threads to end."""
        self.stopping.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            self._running.clear()  # those cancelled before they ran
            self._lock.notify_all()
