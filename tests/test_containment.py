"""Reads never leave the folder: symbolic links (to files or folders) and anything that is not a
regular file (a FIFO, a socket) are absent to every read, and reading one never blocks."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.store.base import NotFound
from skypi.store.local import LocalStore
from tests.dists import wheel_bytes, wheel_name

SECRET = b"root:x:0:0:the secret the server user can read\n"


@pytest.fixture(autouse=True, params=["/proc", "walk"])
def how(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the store confines a read: asking /proc (Linux), and walking folder by folder
    with O_NOFOLLOW (elsewhere)."""
    if request.param == "walk":
        monkeypatch.setattr("skypi.store.local._PROC_FD", "")
    return str(request.param)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside DIR with a file only the server user should see."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "passwd").write_bytes(SECRET)
    (path / "x-1.0.tar.gz").write_bytes(SECRET)
    return path


def _get(client: TestClient, url: str) -> tuple[int, bytes]:
    """GET in a thread, so a read that blocks fails the test instead of hanging it."""
    result: list[tuple[int, bytes]] = []

    def run() -> None:
        response = client.get(url)
        result.append((response.status_code, response.content))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert result, f"GET {url} did not answer within 10 s"
    return result[0]


def _links(folder: Path, outside: Path) -> dict[str, str]:
    """Every hostile entry, and the URL that would read it."""
    (folder / "x-1.0.tar.gz").symlink_to(outside / "passwd")
    (folder / "x").mkdir()
    (folder / "x" / "x-1.0.tar.gz").symlink_to(outside / "passwd")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    (folder / "inside-link-1.0.tar.gz").symlink_to(folder / "x" / "x-1.0.tar.gz")
    os.mkfifo(folder / "x" / "x-1.0-py3-none-any.whl")
    os.mkfifo(folder / "x" / "x-1.0-py3-none-any.whl.metadata")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "x" / "x-2.0.tar.gz"))
    return {
        "file link at the top": "/packages/x-1.0.tar.gz",
        "file link in a project": "/packages/x/x-1.0.tar.gz",
        "linked folder": "/packages/linked/passwd",
        "linked folder, archive name": "/packages/linked/x-1.0.tar.gz",
        "link to a link": "/packages/inside-link-1.0.tar.gz",
        "FIFO named like a wheel": "/packages/x/x-1.0-py3-none-any.whl",
        "FIFO named like metadata": "/packages/x/x-1.0-py3-none-any.whl.metadata",
        "socket named like an sdist": "/packages/x/x-2.0.tar.gz",
    }


def test_links_fifos_and_sockets_are_not_served(folder: Path, outside: Path) -> None:
    urls = _links(folder, outside)
    client = TestClient(create_app(LocalStore(folder), Settings(upload_auth=False)))
    for case, url in urls.items():
        status, body = _get(client, url)
        assert status == 404, (case, status)
        assert b"secret" not in body, case
        head = client.head(url)
        assert head.status_code == 404, case
        ranged = client.get(url, headers={"Range": "bytes=0-10"})
        assert ranged.status_code == 404, case


def test_a_real_file_next_to_them_is_served(folder: Path, outside: Path) -> None:
    _links(folder, outside)
    name = wheel_name("x", "3.0")
    (folder / "x" / name).write_bytes(wheel_bytes("x", "3.0"))
    client = TestClient(create_app(LocalStore(folder), Settings(upload_auth=False)))
    assert client.get(f"/packages/x/{name}").content == wheel_bytes("x", "3.0")


def test_the_store_treats_them_as_absent(folder: Path, outside: Path) -> None:
    _links(folder, outside)
    store = LocalStore(folder)
    for key in (
        "packages/x-1.0.tar.gz",
        "packages/x/x-1.0.tar.gz",
        "packages/linked/passwd",
        "packages/x/x-1.0-py3-none-any.whl",
        "packages/x/x-2.0.tar.gz",
    ):
        assert store.head(key) is None, key
        with pytest.raises(NotFound):
            store.get(key)
        with pytest.raises(NotFound):
            store.open(key)
    assert [info.key for info in store.list("packages/")] == []


def test_a_linked_state_file_is_not_read(folder: Path, outside: Path) -> None:
    store = LocalStore(folder)
    (store.state_dir / "simple").mkdir()
    (store.state_dir / "simple" / "index.html").symlink_to(outside / "passwd")
    client = TestClient(create_app(store, Settings(upload_auth=False)))
    status, body = _get(client, "/simple/")
    assert status == 404
    assert b"secret" not in body


@pytest.mark.parametrize(
    "url",
    [
        f"/packages/{'a' * 300}/a-1.0.tar.gz",
        f"/packages/a/{'a' * 300}-1.0.tar.gz",
        f"/simple/{'a' * 300}/",
        f"/simple/{'a' * 300}/?format=application/vnd.pypi.simple.v1+json",
    ],
)
def test_path_components_over_255_bytes_are_absent(folder: Path, url: str) -> None:
    client = TestClient(create_app(LocalStore(folder), Settings(upload_auth=False)))
    assert client.get(url).status_code == 404
    assert client.head(url).status_code == 404
