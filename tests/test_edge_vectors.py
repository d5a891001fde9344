"""The Python read path against the shared edge vectors (``spec/edge-vectors.json``)."""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.tokens import TokenRecord
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
from tests.dists import wheel_bytes, wheel_name

SPEC = json.loads((Path(__file__).parents[1] / "spec" / "edge-vectors.json").read_text())


def vector_token(name: str) -> str:
    return f"skypi_vector-{name}"


def install_tokens(store: LocalStore) -> None:
    """The fixture's tokens, as `skypi token create` (and revoke) would leave them."""
    repo = TokenRepository(store)
    for name, spec in SPEC["fixture"]["tokens"].items():
        expires = datetime(2020, 1, 1, tzinfo=UTC) if spec.get("expired") else None
        record = TokenRecord.create(
            vector_token(name),
            name=name,
            scopes=set(spec["scopes"]),
            projects=set(spec["projects"]) if spec["projects"] else None,
            expires=expires,
        )
        repo.add(record)
        if spec.get("revoked"):
            repo.revoke(record.id)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, dict[str, TestClient]]:
    store = LocalStore(tmp_path_factory.mktemp("edge") / "packages")
    indexer = Indexer(store)
    indexer.sync_root()
    for wheel in SPEC["fixture"]["wheels"]:
        name = wheel_name(wheel["name"], wheel["version"])
        key = f"packages/foo-bar/{name}"
        store.put(key, wheel_bytes(wheel["name"], wheel["version"]))
        assert indexer.apply([Landed(key)]).added == [name]
    install_tokens(store)
    clients = {
        mode: TestClient(
            create_app(store, Settings(private=mode == "private")), follow_redirects=False
        )
        for mode in ("public", "private")
    }
    for client in clients.values():
        client.headers.pop("accept-encoding")  # a vector's headers are all the request has
    return store, clients


def _expand(value: str, store: LocalStore) -> str:
    def etag(match: re.Match[str]) -> str:
        info = store.head(match.group(1))
        assert info is not None
        return info.etag

    def basic(match: re.Match[str]) -> str:
        pair = f"__token__:{vector_token(match.group(1))}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    value = re.sub(r"\{basic:([^}]+)\}", basic, value)
    return re.sub(r"\{etag:([^}]+)\}", etag, value)


@pytest.mark.parametrize("vector", SPEC["vectors"], ids=[v["name"] for v in SPEC["vectors"]])
def test_vector(vector: dict[str, Any], indexed: tuple[LocalStore, dict[str, TestClient]]) -> None:
    store, clients = indexed
    client = clients[vector.get("mode", "public")]
    request, expect = vector["request"], vector["expect"]
    headers = {k: _expand(v, store) for k, v in request["headers"].items()}
    url = request["path"] + (f"?{request['query']}" if request["query"] else "")
    response = client.request(request["method"], url, headers=headers)
    assert response.status_code == expect["status"], response.text
    for name, value in expect["headers"].items():
        if value is None:  # must be absent
            assert name not in response.headers, name
            continue
        value = _expand(value, store)
        if name == "content-range":
            assert response.headers[name].startswith(value.split("/")[0])
        else:
            assert response.headers.get(name) == value, name
    if expect["object"]:
        _, body = store.get(expect["object"])
        if expect["object"].endswith(".gz"):  # httpx decodes the variant: compare the page
            body = gzip.decompress(body)
        if "range" in expect:
            start, end = expect["range"]
            body = body[start:] if end is None else body[start : end + 1]
        assert response.content == body
    if request["method"] == "HEAD":
        assert response.content == b""
        assert int(response.headers["content-length"]) > 0
