"""``skypi serve`` on an existing pypiserver folder: everything installable is indexed at start."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.dists import poisoned, sdist_bytes, wheel_bytes, zip_sdist_bytes
from tests.e2e.conftest import BIN, pip, start_server

pytestmark = pytest.mark.e2e


def test_adopts_a_pypiserver_folder(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "pypiserver-packages"
    (folder / "team-a").mkdir(parents=True)
    (folder / ".git").mkdir()
    files = {
        "flat_pkg-1.0-py3-none-any.whl": wheel_bytes("flat-pkg", "1.0"),
        "team-a/nested_pkg-2.0-py3-none-any.whl": wheel_bytes("nested-pkg", "2.0"),
        "Legacy.Name-0.9.tar.gz": sdist_bytes("Legacy.Name", "0.9", top="Legacy.Name-0.9"),
        "oldzip-0.1.zip": zip_sdist_bytes("oldzip", "0.1"),
        "local_pkg-1.0+cpu-py3-none-any.whl": wheel_bytes("local-pkg", "1.0+cpu"),
        "README.txt": b"not a package",
        "broken-1.0-py3-none-any.whl": b"truncated",
        ".git/objects-1.0-py3-none-any.whl": wheel_bytes("objects", "1.0"),
    }
    for path, data in files.items():
        (folder / path).write_bytes(data)
    before = {p: (folder / p).read_bytes() for p in files}
    server = start_server(folder, tmp_path / "log")
    try:
        root = httpx.get(server.index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        names = sorted(p["name"] for p in root.json()["projects"])
        assert names == ["Legacy.Name", "flat-pkg", "local-pkg", "nested-pkg", "oldzip"]
        page = httpx.get(f"{server.index}legacy-name/").text
        assert ">Legacy.Name-0.9.tar.gz</a>" in page
        local = httpx.get(f"{server.index}local-pkg/").text
        assert "local_pkg-1.0%2Bcpu-py3-none-any.whl" in local
        assert httpx.get(f"{server.index}objects/").status_code == 404
        pip(
            "install",
            "--no-cache-dir",
            "--index-url",
            server.index,
            "--target",
            str(tmp_path / "t"),
            "nested-pkg",
            "local-pkg",
            env=env,
        )
        logged = server.log.read_text()  # the broken wheel is reported, once, by its path
        broken = folder.resolve() / "broken-1.0-py3-none-any.whl"
        assert logged.count(f"set aside {broken} (not indexed)") == 1
    finally:
        server.stop()
    assert {p: (folder / p).read_bytes() for p in files} == before  # nothing moved or changed


def test_a_folder_with_poisoned_archives_starts_and_keeps_indexing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """Hand-made archives that once crashed the start (an encrypted zip, a tar header claiming
    2**88 bytes, a PKG-INFO cut short): the server starts, lists the good files, logs each bad
    one once by its path, and its watcher indexes files that land in the same batch after
    them; `skypi reindex --check` lists them as set aside, not as drift."""
    folder = tmp_path / "packages"
    folder.mkdir()
    cases = sorted(poisoned("bad", "1.0"))
    for number, case in enumerate(cases):
        filename, data = poisoned(f"bad{number}", "1.0")[case]
        (folder / filename).write_bytes(data)
    (folder / "good-1.0-py3-none-any.whl").write_bytes(wheel_bytes("good", "1.0"))
    server = start_server(folder, tmp_path / "log")
    json_page = {"Accept": "application/vnd.pypi.simple.v1+json"}
    try:
        root = httpx.get(server.index, headers=json_page).json()
        assert [p["name"] for p in root["projects"]] == ["good"]
        for number, case in enumerate(cases):  # the same harm, while it runs
            filename, data = poisoned(f"late{number}", "1.0")[case]
            (folder / filename).write_bytes(data)
        (folder / "later-1.0-py3-none-any.whl").write_bytes(wheel_bytes("later", "1.0"))
        deadline = time.monotonic() + 30
        while httpx.get(f"{server.index}later/").status_code != 200:
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.1)
        logged = server.log.read_text()
    finally:
        server.stop()
    for number in range(len(cases)):
        for project in (f"bad{number}", f"late{number}"):
            assert logged.count(f"set aside {folder.resolve()}/{project}-1.0") == 1, project
    assert "Traceback" not in logged
    check = subprocess.run(
        [str(BIN / "skypi"), "reindex", str(folder), "--check"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("set aside: ") == 2 * len(cases)
    assert "no drift, 6 set aside (not indexed)" in check.stderr
