"""50 distinct files to one project at once: every one listed, every run."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.e2e.conftest import Server, wait_for

pytestmark = pytest.mark.e2e
N = 50


def _listed(server: Server, project: str) -> tuple[set[str], set[str]]:
    page = httpx.get(
        f"{server.index}{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=10,
    )
    html = httpx.get(f"{server.index}{project}/", headers={"Accept": "text/html"}, timeout=10)
    in_json = {f["filename"] for f in page.json()["files"]} if page.status_code == 200 else set()
    in_html = {name for name in _names(N) if f">{name}</a>" in html.text}
    return in_json, in_html


def _names(n: int) -> list[str]:
    return [wheel_name("crowd", f"1.0.{i}") for i in range(n)]


def test_fifty_concurrent_uploads_all_listed(server: Server) -> None:
    def upload(i: int) -> int:
        version = f"1.0.{i}"
        data = wheel_bytes("crowd", version)
        name = wheel_name("crowd", version)
        response = httpx.post(
            f"{server.url}/legacy/",
            auth=("__token__", server.token),
            data=upload_form(data, name, "crowd", version),
            files={"content": (name, data)},
            timeout=120,
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=N) as pool:
        statuses = list(pool.map(upload, range(N)))
    assert statuses == [200] * N
    in_json, in_html = _listed(server, "crowd")
    assert in_json == set(_names(N))
    assert in_html == set(_names(N))
    root = httpx.get(server.index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert [p["name"] for p in root.json()["projects"]] == ["crowd"]


def test_fifty_files_copied_in_at_once_all_listed(server: Server, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    for i in range(N):
        (staging / wheel_name("crowd", f"1.0.{i}")).write_bytes(wheel_bytes("crowd", f"1.0.{i}"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda p: shutil.copy(p, server.folder / p.name), staging.iterdir()))
    assert wait_for(
        lambda: _listed(server, "crowd") == (set(_names(N)), set(_names(N))), timeout=20
    ), _listed(server, "crowd")
    metadata = json.loads(
        httpx.get(
            f"{server.index}crowd/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        ).text
    )["files"][0]["core-metadata"]
    assert set(metadata) == {"sha256"}
