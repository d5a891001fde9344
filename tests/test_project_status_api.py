"""PEP 792 through the admin API: who may set a status, and what archived/quarantined refuse."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic
from tests.dists import upload_form, wheel_bytes, wheel_name

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _upload(client: TestClient, token: str, version: str) -> tuple[int, str]:
    data = wheel_bytes("foo", version)
    response = client.post(
        "/legacy/",
        data=upload_form(data, wheel_name("foo", version), "foo", version),
        files={"content": (wheel_name("foo", version), data)},
        headers=basic(token),
    )
    return response.status_code, response.text


def test_status_route_and_what_it_refuses(store: LocalStore) -> None:
    client = TestClient(create_app(store, Settings()))
    admin, uploader = add_token(store, "admin"), add_token(store, "upload")
    assert _upload(client, uploader, "1.0")[0] == 200

    def status(body: dict[str, object], token: str = admin, project: str = "Foo") -> object:
        return client.post(f"/api/projects/{project}/status", json=body, headers=basic(token))

    assert status({"status": "archived"}, uploader).status_code == 403  # admins only
    assert status({"status": "archived"}, project="nothing").status_code == 404
    bad = status({"status": "retired"})
    assert bad.status_code == 400
    assert "must be one of active, archived" in bad.text
    assert status({"status": "archived", "reason": "a\x00b"}).status_code == 400

    assert status({"status": "archived", "reason": "moved to foo2"}).json() == {
        "status": ["foo archived"]
    }
    page = client.get("/simple/foo/", headers=JSON).json()
    assert page["project-status"] == {"status": "archived", "reason": "moved to foo2"}
    assert len(page["files"]) == 1
    code, text = _upload(client, uploader, "2.0")
    assert code == 400
    assert "is archived: moved to foo2" in text
    assert not list(store.packages_dir.rglob("foo-2.0-*"))  # nothing left behind
    plan = client.post(
        "/api/uploads",
        json={
            "filename": wheel_name("foo", "2.0"),
            "size": 10,
            "sha256": hashlib.sha256(b"x").hexdigest(),
        },
        headers=basic(uploader),
    )
    assert plan.status_code == 400
    assert "archived" in plan.text  # skypi publish is refused too

    assert status({"status": "quarantined"}).status_code == 200
    page = client.get("/simple/foo/", headers=JSON).json()
    assert (page["files"], page["versions"]) == ([], [])
    html = client.get("/simple/foo/").text
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert "foo-1.0" not in html
    assert _upload(client, uploader, "2.0")[0] == 400

    assert status({"status": "active"}).status_code == 200
    assert len(client.get("/simple/foo/", headers=JSON).json()["files"]) == 1
    assert _upload(client, uploader, "2.0")[0] == 200


def test_the_people_page_shows_the_status_and_hides_quarantined_files(store: LocalStore) -> None:
    client = TestClient(create_app(store, Settings()))
    admin, uploader = add_token(store, "admin"), add_token(store, "upload")
    assert _upload(client, uploader, "1.0")[0] == 200
    assert "foo-1.0" in client.get("/project/foo/").text
    client.post(
        "/api/projects/foo/status",
        json={"status": "quarantined", "reason": "malware"},
        headers=basic(admin),
    )
    html = client.get("/project/foo/").text
    assert "This project is quarantined: malware." in html
    assert "foo-1.0-py3-none-any.whl" not in html
