"""The request log of ``skypi serve`` and ``skypi dev``: a line per request by default, in the
Common Log Format with the duration appended, and never a token, however a client sent it
(Basic credentials from twine and pip, a URL's user information, a query, a path,
percent-encoded, an absolute request target), at any log level."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.dists import make_wheel
from tests.e2e.conftest import client_env, pip, run_cli, start_server, twine
from tests.e2e.test_dev import start_dev

pytestmark = pytest.mark.e2e

# client - - [time] "METHOD TARGET HTTP/x" status bytes seconds
LINE = re.compile(
    r"^(?P<client>\S+) - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "
    r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/1\.[01]" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r"(?P<seconds>\d+\.\d{3})$"
)


def access_lines(log: Path) -> list[re.Match[str]]:
    return [m for m in map(LINE.match, log.read_text().splitlines()) if m]


def absolute_form(port: int, target: str, forwarded: str) -> bytes:
    """A request with an absolute target (as sent to a proxy) and a forged X-Forwarded-For
    (uvicorn believes it from loopback), read to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {forwarded}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("level", ["info", "debug"])
def test_every_request_is_logged_and_no_token_is(tmp_path: Path, level: str) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    token = run_cli("token", "create", str(folder), "--scope", "admin").stdout.strip()
    secret = token.removeprefix("skypi_")
    server = start_server(folder, tmp_path / "server.log", "--private", "--log-level", level)
    env = client_env(tmp_path)
    try:
        (tmp_path / "dist").mkdir()
        wheel = make_wheel(tmp_path / "dist", "logged", "1.0")
        twine("upload", "--repository-url", f"{server.url}/legacy/", "-u", "__token__",
              "-p", token, str(wheel), env=env)  # fmt: skip
        with_token = server.index.replace("://", f"://__token__:{token}@", 1)
        pip("download", "--no-deps", "-d", str(tmp_path / "got"), "--index-url", with_token,
            "logged", env=env)  # fmt: skip
        auth = httpx.BasicAuth("__token__", token)
        listing = httpx.get(server.index, auth=auth, timeout=10)
        assert listing.status_code == 200
        for target in (
            f"/simple/?token={token}",
            f"/simple/{token}/",
            f"/t/{quote(token, safe='')}/simple/",
            "/simple/" + "".join(f"%{b:02X}" for b in token.encode()) + "/",
        ):
            httpx.get(f"{server.url}{target}", auth=auth, timeout=10)
        answer = absolute_form(server.port, f"http://__token__:{token}@x{'/simple/'}", '1.2.3.4 "x')
        assert answer.startswith(b"HTTP/1.1 ")
    finally:
        server.stop()
    text = server.log.read_text()
    assert token not in text
    assert secret not in text
    assert secret[:16] not in text
    assert "Traceback" not in text
    lines = access_lines(server.log)
    said = [(m["method"], m["target"], m["status"]) for m in lines]
    assert ("POST", "/legacy/", "200") in said
    assert ("GET", "/simple/logged/", "200") in said  # pip, with the token in its URL
    listed = [m for m in lines if m["target"] == "/simple/" and m["status"] == "200"]
    assert [int(m["bytes"]) for m in listed] == [listing.num_bytes_downloaded]  # as sent
    assert any(m["target"] == "/simple/?token=skypi_…" for m in lines)
    assert sum("skypi_…" in m["target"] for m in lines) >= 3
    # the user information is not logged (uvicorn keeps only the path of an absolute target);
    # the forged client address is escaped: one line, its fields its own
    assert ('1.2.3.4\\x20\\"x', "/simple/", "401") in [
        (m["client"], m["target"], m["status"]) for m in lines
    ]
    assert len(lines) == len([x for x in text.splitlines() if "HTTP/1." in x])  # all well-formed


def test_no_access_log_turns_it_off(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    server = start_server(folder, tmp_path / "server.log", "--no-access-log")
    try:
        assert httpx.get(server.index, timeout=10).status_code == 200
    finally:
        server.stop()
    assert access_lines(server.log) == []
    assert "GET /simple/" not in server.log.read_text()


@pytest.mark.parametrize("flags", [(), ("--no-access-log",)])
def test_skypi_dev_logs_requests_the_same_way(tmp_path: Path, flags: tuple[str, ...]) -> None:
    with start_dev(tmp_path, *flags) as dev:
        assert httpx.get(f"{dev.url}/health", timeout=10).status_code == 200
        httpx.get(f"{dev.index}?token={dev.token}", timeout=10)
    lines = access_lines(dev.log)
    if flags:
        assert lines == []
        return
    assert ("GET", "/health", "200") in [(m["method"], m["target"], m["status"]) for m in lines]
    assert any(m["target"] == "/simple/?token=skypi_…" for m in lines)
