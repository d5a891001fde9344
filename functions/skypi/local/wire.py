"""The local server's limits on the wire, which the application cannot enforce itself: the
size of a request's head (request line and headers) and how long a client may stall.

uvicorn bounds neither with httptools (its ``h11_max_incomplete_event_size`` applies only to
h11, and ``timeout_keep_alive`` only to the wait between requests), so skypi serve runs a small
subclass of uvicorn's httptools protocol:

- a head larger than ``max_head_bytes`` is answered ``431`` and the connection closed;
- a head that is not complete within ``client_timeout`` seconds of its first byte (or of the
  connection) is answered ``408`` and closed (slow-header clients, "slowloris");
- a body that pauses for more than ``client_timeout`` seconds is closed (the application sees
  the client disconnect and stores nothing). While the application itself is slow to read (flow
  control paused the socket), the clock does not run;
- a whole body has a deadline too, so a client cannot hold a connection by sending a byte just
  before each pause would end: ``client_timeout`` seconds, plus one second for every
  ``min_body_rate`` bytes received (Apache's mod_reqtimeout ``body=20,MinRate=500`` works so).
  A body that falls behind that rate is closed as a paused one is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("skypi.serve")


@dataclass(frozen=True)
class WireLimits:
    max_head_bytes: int = 64 * 1024  # nginx allows 4 x 8 KiB header lines; Apache 8 KiB each
    client_timeout: float = 30.0  # nginx client_header_timeout/client_body_timeout: 60 s
    min_body_rate: int = 500  # bytes/s a body must average past its first client_timeout


def _status(code: int, reason: str, message: str) -> bytes:
    body = message.encode() + b"\n"
    return (
        f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`WireLimits`."""

    limits = WireLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head so far: its end may span two reads
        self._reading_head = True
        self._body_started = 0.0  # loop time the body began (less time the app paused it)
        self._body_bytes = 0
        self._clock: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._start_clock()  # a connection that never sends a head is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def _start_clock(self) -> None:
        self._stop_clock()
        self._clock = self.loop.call_later(self.limits.client_timeout, self._stalled)

    def _stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            self._clock = None

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            # Counted before the parser sees the bytes: a whole head in one read would
            # otherwise be parsed (and answered) before its size was looked at.
            self._head_bytes = self._head_size(data)
            if self._head_bytes > self.limits.max_head_bytes:
                log.warning("refused a request head over %d bytes", self.limits.max_head_bytes)
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    f"Request headers too large: at most {self.limits.max_head_bytes:,} bytes.",
                )
                return
            if self._clock is None:
                self._start_clock()
        else:
            self._body_bytes += len(data)
            if self._body_late():
                log.warning(
                    "closed a connection whose request body came slower than %d bytes/s",
                    self.limits.min_body_rate,
                )
                self.transport.close()
                return
            self._start_clock()  # the body moved: a pause is measured from here
        super().data_received(data)

    def _head_size(self, data: bytes) -> int:
        """The bytes of this request's head once ``data`` has arrived: up to the blank line
        that ends it when that is in ``data`` (blank lines before a request are skipped, as
        the parser skips them)."""
        if not self._head_bytes:
            data = data.lstrip(b"\r\n")
        window = self._head_tail + data
        self._head_tail = window[-3:]
        end = window.find(b"\r\n\r\n")  # the only end httptools takes (a bare LF is a 400)
        return self._head_bytes + (len(data) if end < 0 else end + 4 - len(window) + len(data))

    def on_headers_complete(self) -> None:
        # The head's clock runs on into the body (each piece of body restarts it): one timer per
        # request, not two, on the hot path.
        self._reading_head = False
        self._body_started, self._body_bytes = self.loop.time(), 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._stop_clock()  # what follows is the application's time, then keep-alive's
        self._reading_head, self._head_bytes, self._head_tail = True, 0, b""

    def _stalled(self) -> None:
        self._clock = None
        if self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:
            self._start_clock()  # the application is slow to read, not the client
            self._body_started += self.limits.client_timeout  # nor does the deadline run
            return
        seconds = self.limits.client_timeout
        if self._reading_head and self._head_bytes:
            log.warning("closed a connection whose request head took over %g s", seconds)
            self._refuse(
                408, "Request Timeout", f"Request headers not received within {seconds:g} s."
            )
        elif self._reading_head:
            self.transport.close()  # connected and sent nothing
        else:
            log.warning("closed a connection whose request body paused for over %g s", seconds)
            self.transport.close()

    def _body_late(self) -> bool:
        """Whether the body so far came slower than the whole-body deadline allows."""
        allowed = self.limits.client_timeout + self._body_bytes / self.limits.min_body_rate
        return self.loop.time() - self._body_started > allowed

    def _refuse(self, code: int, reason: str, message: str) -> None:
        self.transport.write(_status(code, reason, message))
        self.transport.close()


def guarded_protocol(
    limits: WireLimits, base: type[asyncio.Protocol] | str = HttpToolsProtocol
) -> type[asyncio.Protocol]:
    """The protocol class to give uvicorn (``uvicorn.Config(http=...)``) for these limits, on
    top of ``base`` when that is another subclass of uvicorn's httptools protocol."""
    bases: tuple[type, ...] = (GuardedHttpToolsProtocol,)
    if (
        isinstance(base, type)
        and issubclass(base, HttpToolsProtocol)
        and not issubclass(GuardedHttpToolsProtocol, base)
    ):
        bases += (base,)
    attributes: dict[str, Any] = {"limits": limits}
    return type("GuardedHttpTools", bases, attributes)
