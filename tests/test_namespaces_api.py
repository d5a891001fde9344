"""Namespaces through the API (PEP 752): the admin routes, and the 409 on every upload path
(twine's form, ``skypi publish``'s plan and completion) for a caller without a grant."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.tokens import TokenRecord, hash_token, new_token
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
from tests.conftest import add_token, basic
from tests.dists import upload_form, wheel_bytes, wheel_name

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _upload(client: TestClient, token: str, name: str, version: str = "1.0") -> tuple[int, str]:
    data, filename = wheel_bytes(name, version), wheel_name(name, version)
    response = client.post(
        "/legacy/",
        data=upload_form(data, filename, name, version),
        files={"content": (filename, data)},
        headers=basic(token),
    )
    return response.status_code, response.text


def _principal(token: str) -> str:
    return f"token:{hash_token(token)[:12]}"


def test_admin_routes_and_the_upload_rule(store: LocalStore) -> None:
    client = TestClient(create_app(store, Settings()))
    admin, platform, data = (add_token(store, s) for s in ("admin", "upload", "upload"))
    assert _upload(client, data, "acme-legacy")[0] == 200  # before the reservation

    def add(body: dict[str, object], token: str = admin) -> httpx.Response:
        response: httpx.Response = client.post("/api/namespaces", json=body, headers=basic(token))
        return response

    assert add({"name": "acme", "owner": "platform"}, data).status_code == 403  # admins only
    limited = add_token(store, "admin", projects={"acme"})
    assert add({"name": "acme", "owner": "platform"}, limited).status_code == 403  # whole index
    assert add({"name": "-acme", "owner": "platform"}).status_code == 400
    assert add({"name": "acme", "owner": "platform", "grants": ["nobody"]}).status_code == 400
    created = add({"name": "Acme", "owner": "platform", "grants": [_principal(platform)]})
    assert created.json() == {
        "name": "acme",
        "owner": "platform",
        "grants": [_principal(platform)],
        "open": False,
        "predating": ["acme-legacy"],
    }
    assert add({"name": "acme-data", "owner": "data"}).status_code == 409  # overlaps acme

    code, text = _upload(client, data, "acme_newthing")  # §12.1 vector 12
    assert code == 409
    assert "'acme-newthing' is in the namespace 'acme', reserved for platform" in text
    assert f"skypi namespace grant acme {_principal(data)}" in text
    assert not list(store.packages_dir.rglob("acme_newthing*"))  # nothing left behind
    assert _upload(client, data, "acme-legacy", "2.0")[0] == 200  # vector 13
    assert _upload(client, data, "acmenew")[0] == 200  # vector 14
    assert _upload(client, platform, "acme-tools")[0] == 200  # the grant

    plan = {"filename": wheel_name("acme-x", "1.0"), "size": 1, "sha256": "0" * 64}
    refused = client.post("/api/uploads", json=plan, headers=basic(data))
    assert refused.status_code == 409
    assert "namespace 'acme'" in refused.json()["detail"]
    done = {**plan, "marker": "m"}
    refused = client.post("/api/uploads/complete", json=done, headers=basic(data))
    assert refused.status_code == 409

    page = client.get("/simple/acme-tools/", headers=JSON).json()  # vector 3
    assert page["meta"]["api-version"] == "1.5"
    assert page["namespaces"] == [{"name": "acme", "owned": True, "_owner": "platform"}]
    legacy = client.get("/simple/acme-legacy/", headers=JSON).json()  # vector 4
    assert legacy["namespaces"] == [{"name": "acme", "owned": False, "_owner": "platform"}]
    html = client.get("/simple/acme-tools/").text  # vector 7
    assert '<meta name="pypi:repository-version" content="1.4">' in html
    assert "namespace" not in html

    granted = client.post(
        "/api/namespaces/acme/grants", json={"principal": _principal(data)}, headers=basic(admin)
    )
    assert granted.json()["grants"] == sorted([_principal(platform), _principal(data)])
    assert _upload(client, data, "acme_newthing")[0] == 200
    gone = client.delete(f"/api/namespaces/acme/grants/{_principal(data)}", headers=basic(admin))
    assert gone.status_code == 200
    assert _principal(data) not in gone.json()["grants"]
    assert _upload(client, data, "acme_other")[0] == 409

    listed = client.get("/api/namespaces", headers=basic(admin)).json()["namespaces"]
    assert [n["name"] for n in listed] == ["acme"]
    assert client.get("/api/namespaces", headers=basic(data)).status_code == 403
    assert client.delete("/api/namespaces/nope", headers=basic(admin)).status_code == 404
    assert client.delete("/api/namespaces/acme", headers=basic(admin)).status_code == 200
    assert client.get("/simple/acme-tools/", headers=JSON).json()["namespaces"] is None
    assert _upload(client, data, "acme_other")[0] == 200


def test_trusted_publishing_is_held_to_the_publishers_grant(store: LocalStore) -> None:
    """A minted token is its publisher to a namespace: the grant names ``publisher:ID``."""
    client = TestClient(create_app(store, Settings()))
    admin = add_token(store, "admin")
    token = new_token()
    record = TokenRecord.create(
        token,
        name="minted",
        scopes={"upload"},
        projects={"acme-ci"},
        expires=datetime.now(UTC) + timedelta(minutes=15),
    )
    TokenRepository(store).add(replace(record, publisher="a1b2c3", claims={"sub": "x"}))
    client.post("/api/namespaces", json={"name": "acme", "owner": "ci"}, headers=basic(admin))
    code, text = _upload(client, token, "acme-ci")
    assert code == 409
    assert "skypi namespace grant acme publisher:a1b2c3" in text
    client.post(
        "/api/namespaces/acme/grants", json={"principal": "publisher:a1b2c3"}, headers=basic(admin)
    )
    assert _upload(client, token, "acme-ci")[0] == 200


def test_an_index_without_upload_tokens_refuses_namespaced_names(store: LocalStore) -> None:
    """``skypi serve -a .`` takes uploads from anyone, who holds no grant: only an open
    namespace takes them."""
    client = TestClient(create_app(store, Settings(upload_auth=False)))
    for body in ({"name": "acme", "owner": "p"}, {"name": "shared", "owner": "all", "open": True}):
        assert client.post("/api/namespaces", json=body).status_code == 200
    assert _upload(client, "x", "acme-x")[0] == 409
    assert _upload(client, "x", "shared-x")[0] == 200
    digest = hashlib.sha256(b"x").hexdigest()
    plan = {"filename": wheel_name("acme-y", "1.0"), "size": 1, "sha256": digest}
    assert client.post("/api/uploads", json=plan).status_code == 409


def test_a_token_limited_to_a_namespace_from_the_cli(store: LocalStore, capsys: object) -> None:
    """``skypi token create --namespace acme``: the token uploads acme and acme-*, nothing
    else; ``skypi token list`` shows the limit as acme-*."""
    from skypi import cli

    folder = str(store.packages_dir)
    assert cli.main(["token", "create", folder, "--scope", "upload", "--namespace", "Acme"]) == 0
    token = capsys.readouterr().out.strip()  # type: ignore[attr-defined]
    assert cli.main(["token", "list", folder]) == 0
    assert " acme-* " in capsys.readouterr().out  # type: ignore[attr-defined]
    assert cli.main(["token", "create", folder, "--namespace=-x"]) == 2
    client = TestClient(create_app(store, Settings()))
    assert _upload(client, token, "acme-lib")[0] == 200
    assert _upload(client, token, "acme")[0] == 200
    code, text = _upload(client, token, "acmelib")
    assert code == 403
    assert "isn't allowed to upload for project 'acmelib'" in text
