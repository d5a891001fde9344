"""A refused upload reads in twine without --verbose: the reason is in the status line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.dists import make_wheel, wheel_bytes, wheel_name
from tests.e2e.conftest import Server, twine

pytestmark = pytest.mark.e2e


def _upload(server: Server, env: dict[str, str], path: Path, password: str):  # type: ignore[no-untyped-def]
    return twine(
        "upload",
        "--non-interactive",
        "--disable-progress-bar",
        "--repository-url",
        f"{server.url}/legacy/",
        "-u",
        "__token__",
        "-p",
        password,
        str(path),
        env=env,
        check=False,
    )


def test_twine_shows_why_an_upload_was_refused(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    original = make_wheel(first, "clash", "1.0")
    assert _upload(server, env, original, server.token).returncode == 0
    other = second / original.name
    other.write_bytes(wheel_bytes("clash", "1.0", payload=b"other bytes"))
    refused = _upload(server, env, other, server.token)
    assert refused.returncode == 1
    output = refused.stdout + refused.stderr
    assert "400 Bad Request" in output  # twine's own words for the status code
    assert "File already exists" in output  # and ours, from the status line, without --verbose
    denied = _upload(server, env, original, "skypi_not-a-token")
    assert denied.returncode == 1
    assert "Invalid or revoked token" in denied.stdout + denied.stderr


def test_the_status_line_is_safe(server: Server) -> None:
    """The phrase is the message's first line in printable ASCII: no header injection."""
    name = wheel_name("x", "1.0")
    response = httpx.post(
        f"{server.url}/legacy/",
        data={":action": "file_upload", "name": "x\r\nInjected: 1", "version": "1.0"},
        files={"content": (name, b"PK", "application/octet-stream")},
        headers={"Authorization": "Basic " + "X" * 8},
    )
    assert 400 <= response.status_code < 500
    assert response.reason_phrase not in {"", "Bad Request", "Unauthorized"}
    assert "\r" not in response.reason_phrase
    assert "injected" not in {k.lower() for k in response.headers}
    assert "x-skypi-reason" not in response.headers  # moved into the status line


def test_a_file_that_looks_like_a_response_head_is_served_as_it_is(server: Server) -> None:
    data = b"HTTP/1.1 400 Bad Request\r\nx-skypi-reason: not me\r\n\r\n"
    (server.folder / "notes").mkdir()
    # Named as a distribution (only those are served from /packages/), never a valid one.
    (server.folder / "notes" / "head-1.0.tar.gz").write_bytes(data)
    response = httpx.get(f"{server.url}/packages/notes/head-1.0.tar.gz")
    assert response.status_code == 200
    assert response.content == data
