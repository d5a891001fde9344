"""Every JSON body the API takes, sent hostile: too deep, not JSON, numbers JSON cannot echo,
wrong types. Each is a 4xx with a reason in the body, with and without a credential."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic

JSON_ROUTES = (
    "/api/uploads",
    "/api/uploads/complete",
    "/api/projects/demo/yank",
    "/api/projects/demo/unyank",
    "/api/projects/demo/status",
    "/_/oidc/mint-token",
    "/_/oidc/burn-token",
)
HOSTILE = (
    b"[" * 60_000,
    b'{"filename": ' + b"[" * 30_000 + b"}",
    b'{"filename": "demo-1.0.tar.gz", "size": 1e400, "sha256": "x", "marker": "m"}',
    b'{"filename": "demo-1.0.tar.gz", "size": NaN, "status": NaN, "token": NaN}',
    b'{"filename": ["demo"], "version": {"a": 1}, "status": 5, "token": ["t"]}',
    b'{"size": "12", "part_size": true, "parts": "all"}',
    b"not json",
    b"\xff\xfe",
    b"[]",
    b"null",
)


@pytest.fixture
def client(store: LocalStore) -> TestClient:
    return TestClient(create_app(store, Settings()), raise_server_exceptions=False)


@pytest.mark.parametrize("route", JSON_ROUTES)
@pytest.mark.parametrize("credential", ["none", "admin"])
def test_hostile_json_bodies_are_refused_with_a_reason(
    client: TestClient, store: LocalStore, route: str, credential: str
) -> None:
    headers = {"Content-Type": "application/json"}
    if credential == "admin":
        headers |= basic(add_token(store, "upload", "admin"))
    for body in HOSTILE:
        response = client.post(route, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (route, body[:40], response.text[:300])
        doc = response.json()
        assert doc.get("detail") or doc.get("errors"), (route, body[:40], doc)
