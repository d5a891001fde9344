"""The tests' loopback server stops whole: its threads joined (a client's kept-alive
connection included), its port free again."""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.loopback import Loopback, serving


class _KeepAlive(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the connection stays open after the answer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def _loopback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("loopback-", "Thread-"))]


def test_stopping_joins_every_thread_and_frees_the_port() -> None:
    before = set(_loopback_threads())
    with serving(_KeepAlive) as server:
        client = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        client.request("GET", "/")
        assert client.getresponse().read() == b"ok"
        # the client keeps its connection open: the request's thread waits on it
        assert len(set(_loopback_threads()) - before) == 2
        port = server.port
    assert set(_loopback_threads()) - before == set()
    with socket.socket() as again:  # free: a server can listen there again (its closed
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # connection waits out
        again.bind(("127.0.0.1", port))  # TIME_WAIT, as every HTTP server allows)
        again.listen()
    with pytest.raises(ConnectionRefusedError):  # and nothing answers on it any more
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/")
    client.close()


def test_a_server_never_started_or_stopped_twice_is_stopped_cleanly() -> None:
    server = Loopback(_KeepAlive)
    server.stop()
    started = Loopback(_KeepAlive).start()
    started.stop()
    started.stop()
    assert not [t for t in threading.enumerate() if t.name == f"loopback-{started.port}"]
