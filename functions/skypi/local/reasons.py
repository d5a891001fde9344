"""uvicorn protocols that put an error's reason in the HTTP status line, as PyPI does.

The app names the reason in a response header (:data:`skypi.core.reason.REASON_HEADER`); the
transport under uvicorn's own HTTP/1.1 protocol (httptools or h11, not forked) moves it into the
status line of that response as it is written: ``HTTP/1.1 400 File already exists``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final, cast

from skypi.core.reason import REASON_HEADER

_HEAD: Final = re.compile(
    rb"\AHTTP/1\.[01] (\d{3}) [^\r\n]*\r\n((?:[^\r\n]+\r\n)*?)"
    + re.escape(REASON_HEADER.encode())
    + rb": ([\x20-\x7e]*)\r\n",
    re.IGNORECASE,
)


def with_reason(data: bytes) -> bytes:
    """Rewrite a response head that carries the reason header; anything else as it is.

    >>> with_reason(b"HTTP/1.1 400 Bad Request\\r\\na: b\\r\\nx-skypi-reason: Too big\\r\\n\\r\\n")
    b'HTTP/1.1 400 Too big\\r\\na: b\\r\\n\\r\\n'
    >>> with_reason(b"body x-skypi-reason: no\\r\\n")
    b'body x-skypi-reason: no\\r\\n'
    """
    match = _HEAD.match(data)
    if match is None or not match.group(3).strip():
        return data
    status, before, reason = match.groups()
    return b"HTTP/1.1 " + status + b" " + reason.strip() + b"\r\n" + before + data[match.end() :]


class _ReasonTransport:
    """The connection's transport, with response heads rewritten on the way out."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raw = bytes(data)
        self._transport.write(with_reason(raw) if raw.startswith(b"HTTP/1.") else raw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def reason_protocol() -> type[asyncio.Protocol]:
    """The protocol class uvicorn's "auto" would pick (httptools, else h11), with reasons."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # pragma: no cover - uvicorn[standard] brings httptools
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]

    class ReasonProtocol(base):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(cast(asyncio.Transport, _ReasonTransport(transport)))

    return ReasonProtocol
