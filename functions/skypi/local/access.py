r"""The request log of the local servers (``skypi serve``, ``skypi dev``): one line per request,
written when its response has been sent, in the Common Log Format with the seconds the response
took appended (as nginx's ``$request_time`` adds them)::

    127.0.0.1 - - [07/Dec/2026:05:00:37 +0000] "GET /simple/demo/ HTTP/1.1" 200 1834 0.004

client address, two unused fields (``-``), the time, the request line, the status, the body's
bytes (``-`` for none) and the duration. It goes to standard error at INFO, like every other
line of the server (``--log-level warning`` or ``--no-access-log`` leave it out).

A client's words are hostile: no header is ever logged (an ``Authorization`` header carries a
token), user information in an absolute request target (``http://__token__:TOKEN@host/...``) is
dropped, the target is logged decoded and then redacted (:func:`skypi.core.tokens.redact`), so a
token percent-encoded in a path or a query is caught too, and quotes, backslashes, spaces and
bytes outside printable ASCII are written ``\"``, ``\\`` and ``\xHH`` (as Apache writes them),
so that a request is always one line that cannot pass for another.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from skypi.core.tokens import redact

ACCESS_LOGGER: Final = "skypi.access"
log = logging.getLogger(ACCESS_LOGGER)

_USERINFO: Final = re.compile(r"\A([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@")
_PLAIN: Final = re.compile(r"[!#-\[\]-~]*")  # printable ASCII but the quote and the backslash


def escape(text: str) -> str:
    r"""``text`` with every byte outside printable ASCII, and the space, as ``\xHH``; quotes and
    backslashes with a backslash.

    >>> print(escape('/a b"c\\d\né'))
    /a\x20b\"c\\d\x0a\xc3\xa9
    """
    if _PLAIN.fullmatch(text):  # most requests: nothing to escape
        return text
    out = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if byte in b'"\\':
            out.append("\\" + chr(byte))
        elif 0x21 <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def request_target(path: str, query: bytes) -> str:
    """What the log shows of a request's target: decoded, without user information, redacted.

    >>> request_target("/simple/demo/", b"")
    '/simple/demo/'
    >>> request_target("http://__token__:hunter2@example.com/simple/", b"a=%73kypi_4Jd9-x2")
    'http://example.com/simple/?a=skypi_…'
    """
    target = path + ("?" + unquote(query.decode("latin-1")) if query else "")
    return redact(escape(_USERINFO.sub(r"\1", target)))


def access_line(scope: Scope, status: int, sent: int, when: float, seconds: float) -> str:
    """The line for one request (see the module's description).

    >>> scope = {"client": ("10.0.0.7", 5123), "method": "GET", "path": "/simple/",
    ...          "query_string": b"", "http_version": "1.1"}
    >>> line = access_line(scope, 200, 1834, 0.0, 0.0041)
    >>> line.split("[")[0], line.split("]")[1]
    ('10.0.0.7 - - ', ' "GET /simple/ HTTP/1.1" 200 1834 0.004')
    >>> access_line({**scope, "client": None}, 304, 0, 0.0, 0.0).split('"')[2]
    ' 304 - 0.000'
    """
    client = scope.get("client")
    host = escape(str(client[0])) if client else "-"
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(when))
    method = escape(str(scope.get("method", "-")))
    target = request_target(str(scope.get("path", "")), scope.get("query_string", b""))
    version = escape(str(scope.get("http_version", "1.1")))
    size = str(sent) if sent else "-"
    return f'{host} - - [{stamp}] "{method} {target} HTTP/{version}" {status} {size} {seconds:.3f}'


@dataclass
class _Sent:
    status: int = 500  # what uvicorn answers for an app that fails before its response
    bytes: int = 0


class AccessLog:
    """ASGI middleware: after each HTTP request, one line on :data:`ACCESS_LOGGER` at INFO."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        when, started = time.time(), time.monotonic()
        sent = _Sent()

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent.status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent.bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            if log.isEnabledFor(logging.INFO):
                took = time.monotonic() - started
                log.info("%s", access_line(scope, sent.status, sent.bytes, when, took))


def access_logging() -> None:
    """Write access lines bare (no level or logger name: each is already a whole line, which
    log tools read as the Common Log Format) to standard error, at the root logger's level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers = [handler]
    log.propagate = False
