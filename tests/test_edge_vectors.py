"""The Python read path against the shared edge vectors (``spec/edge-vectors.json``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from tests.dists import wheel_bytes, wheel_name

SPEC = json.loads((Path(__file__).parents[1] / "spec" / "edge-vectors.json").read_text())


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, TestClient]:
    store = LocalStore(tmp_path_factory.mktemp("edge") / "packages")
    indexer = Indexer(store)
    indexer.sync_root()
    for wheel in SPEC["fixture"]["wheels"]:
        name = wheel_name(wheel["name"], wheel["version"])
        key = f"packages/foo-bar/{name}"
        store.put(key, wheel_bytes(wheel["name"], wheel["version"]))
        assert indexer.apply([Landed(key)]).added == [name]
    return store, TestClient(create_app(store), follow_redirects=False)


def _expand(value: str, store: LocalStore) -> str:
    def etag(match: re.Match[str]) -> str:
        info = store.head(match.group(1))
        assert info is not None
        return info.etag

    return re.sub(r"\{etag:([^}]+)\}", etag, value)


@pytest.mark.parametrize("vector", SPEC["vectors"], ids=[v["name"] for v in SPEC["vectors"]])
def test_vector(vector: dict[str, Any], indexed: tuple[LocalStore, TestClient]) -> None:
    store, client = indexed
    request, expect = vector["request"], vector["expect"]
    headers = {k: _expand(v, store) for k, v in request["headers"].items()}
    url = request["path"] + (f"?{request['query']}" if request["query"] else "")
    response = client.request(request["method"], url, headers=headers)
    assert response.status_code == expect["status"], response.text
    for name, value in expect["headers"].items():
        value = _expand(value, store)
        if name == "content-range":
            assert response.headers[name].startswith(value.split("/")[0])
        else:
            assert response.headers.get(name) == value, name
    if expect["object"]:
        _, body = store.get(expect["object"])
        if "range" in expect:
            start, end = expect["range"]
            body = body[start:] if end is None else body[start : end + 1]
        assert response.content == body
    if request["method"] == "HEAD":
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0
