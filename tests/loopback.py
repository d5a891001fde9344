"""One HTTP server on a free loopback port for the tests that stand in for a service (a static
upstream index, hostile answers, an OSV stub, an OIDC issuer, the rehearsal's CloudFront).

Every way out of it stops the whole server: no new request is taken, each connection still
open (a client's keep-alive) is shut so its thread returns, the serving thread and every
request's thread are joined, and the port is freed. It starts no process.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class _Server(ThreadingHTTPServer):
    """A threading server whose request threads are joined when it closes (``socketserver``
    joins non-daemon threads at ``server_close``), after their connections are shut."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self._open: set[Any] = set()
        self._open_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)

    def server_close(self) -> None:
        with self._open_lock:
            still_open = list(self._open)
        for request in still_open:  # a thread waiting on a kept-alive connection returns
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)
        super().server_close()


class Loopback:
    """An HTTP server on 127.0.0.1 (``tls``: HTTPS with this context), bound at once so its
    URL is known before it serves; serving from :meth:`start` (or ``with``) until
    :meth:`stop`."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.server = _Server(handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self.server.serve_forever, name=f"loopback-{self.port}", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> Loopback:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, shut the connections still open, join every thread, free the port.
        Safe to call more than once, and before :meth:`start`."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def __enter__(self) -> Loopback:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def serving(
    handler: type[BaseHTTPRequestHandler], *, tls: ssl.SSLContext | None = None
) -> Iterator[Loopback]:
    """``with serving(Handler) as server:`` a started :class:`Loopback`, stopped on the way out."""
    with Loopback(handler, tls=tls) as server:
        yield server
