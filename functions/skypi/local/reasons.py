"""A uvicorn protocol that puts an error's reason in the HTTP status line, as PyPI does.

The app names the reason in a response header (:data:`skypi.core.reason.REASON_HEADER`).
uvicorn's own httptools protocol (not forked) runs each request in a response cycle that writes
the response head first; this subclass gives every cycle a transport that rewrites that one
write, ``HTTP/1.1 400 Bad Request`` + the header into ``HTTP/1.1 400 File already exists``,
and passes the body through untouched, whatever it holds.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

from skypi.core.reason import REASON_HEADER

_HEAD: Final = re.compile(
    rb"\AHTTP/1\.[01] (\d{3}) [^\r\n]*\r\n((?:[^\r\n]+\r\n)*?)"
    + re.escape(REASON_HEADER.encode())
    + rb": ([\x20-\x7e]*)\r\n",
    re.IGNORECASE,
)


def with_reason(head: bytes) -> bytes:
    """Rewrite a response head that carries the reason header; any other as it is.

    >>> with_reason(b"HTTP/1.1 400 Bad Request\\r\\na: b\\r\\nx-skypi-reason: Too big\\r\\n\\r\\n")
    b'HTTP/1.1 400 Too big\\r\\na: b\\r\\n\\r\\n'
    >>> with_reason(b"HTTP/1.1 200 OK\\r\\na: b\\r\\n\\r\\n")
    b'HTTP/1.1 200 OK\\r\\na: b\\r\\n\\r\\n'
    """
    match = _HEAD.match(head)
    if match is None or not match.group(3).strip():
        return head
    status, before, reason = match.groups()
    return b"HTTP/1.1 " + status + b" " + reason.strip() + b"\r\n" + before + head[match.end() :]


class _FirstHead:
    """One response cycle's transport: its first final (non-1xx) head is rewritten."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self._head_written = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raw = bytes(data)
        if not self._head_written and raw.startswith(b"HTTP/1.") and raw[9:10] != b"1":
            self._head_written = True
            raw = with_reason(raw)
        self._transport.write(raw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def reason_protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol with reasons; without httptools, uvicorn's default."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        return "auto"

    class ReasonProtocol(HttpToolsProtocol):
        def on_headers_complete(self) -> None:
            before = self.cycle
            super().on_headers_complete()
            cycle = self.cycle
            if cycle is not None and cycle is not before:
                cycle.transport = _FirstHead(cycle.transport)  # type: ignore[assignment]

    return ReasonProtocol
