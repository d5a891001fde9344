"""The access log's middleware over a small ASGI app: the status and the bytes it sent, a line
even when the app fails, and nothing for what is not an HTTP request."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from skypi.core.tokens import new_token
from skypi.local.access import ACCESS_LOGGER, AccessLog


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/fails":
        raise RuntimeError("the app failed")
    await send({"type": "http.response.start", "status": 201, "headers": []})
    for part in (b"abc", b"defg"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(autouse=True)
def _propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    """caplog listens at the root: let the access lines reach it even after a server in this
    process has given them their own handler."""
    monkeypatch.setattr(logging.getLogger(ACCESS_LOGGER), "propagate", True)


def get(*paths: str, auth: tuple[str, str] | None = None) -> list[int]:
    """The statuses of GET requests through :class:`AccessLog` over :func:`app`."""

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=AccessLog(app), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [(await client.get(path, auth=auth)).status_code for path in paths]

    return asyncio.run(run())


def test_a_line_per_request_with_status_bytes_and_no_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = new_token()
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        assert get(f"/made?key={secret}", "/fails", auth=("__token__", secret)) == [201, 500]
    lines = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 2
    assert '"GET /made?key=skypi_… HTTP/1.1" 201 7 ' in lines[0]
    assert '"GET /fails HTTP/1.1" 500 - ' in lines[1]
    assert all(secret not in line and secret[6:20] not in line for line in lines)


def test_nothing_is_logged_above_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOGGER):
        assert get("/made") == [201]
    assert [r for r in caplog.records if r.name == ACCESS_LOGGER] == []
