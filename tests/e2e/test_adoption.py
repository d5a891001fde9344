"""``skypi serve`` on an existing pypiserver folder: everything installable is indexed at start."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.dists import sdist_bytes, wheel_bytes, zip_sdist_bytes
from tests.e2e.conftest import pip, start_server

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
