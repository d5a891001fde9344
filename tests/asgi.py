"""Requests handed to an ASGI app exactly as written: the raw path and header bytes reach the
app as a server (uvicorn) passes them, with none of an HTTP client's normalizing (httpx removes
dot segments and re-encodes a stray ``%``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

Header = tuple[str | bytes, str | bytes]


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # raw: percent-encoded as sent
    query: str = ""
    headers: tuple[Header, ...] = ()
    body: bytes = b""


@dataclass
class Response:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


async def call_async(app: Any, request: Request) -> Response:
    raw_path = request.path.encode("latin-1")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": unquote(request.path),  # what uvicorn puts there
        "raw_path": raw_path,
        "query_string": request.query.encode("latin-1"),
        "root_path": "",
        "headers": [(_bytes(k).lower(), _bytes(v)) for k, v in request.headers]
        + [(b"host", b"testserver")]
        + (
            []
            if any(_bytes(k).lower() == b"content-length" for k, _ in request.headers)
            else [(b"content-length", str(len(request.body)).encode())]
        ),
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = False
    response = Response()

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": request.body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response.status = message["status"]
            for name, value in message.get("headers", []):
                response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            response.body += message.get("body", b"")

    await app(scope, receive, send)
    return response


def call(app: Any, request: Request) -> Response:
    return asyncio.run(call_async(app, request))


def call_all(app: Any, requests: Iterable[Request]) -> list[Response]:
    async def run() -> list[Response]:
        return [await call_async(app, r) for r in requests]

    return asyncio.run(run())
