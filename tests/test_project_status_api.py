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


def test_a_quarantined_projects_files_are_not_offered_and_come_back_when_lifted(
    store: LocalStore,
) -> None:
    """PEP 792: no distribution of a quarantined project is offered for download, its
    ``.metadata`` neither, public or private; the facts that list them again are held beside
    the page (``held/``), never in it; lifting the quarantine offers and lists them again."""
    admin, uploader = add_token(store, "admin"), add_token(store, "upload")
    for private in (False, True):
        client = TestClient(create_app(store, Settings(private=private)))
        reader = basic(add_token(store, "read"))
        if not private:
            assert _upload(client, uploader, "1.0")[0] == 200
        urls = [f"/packages/foo/{wheel_name('foo', '1.0')}"]
        urls.append(urls[0] + ".metadata")
        assert [client.get(u, headers=reader).status_code for u in urls] == [200, 200]
        status = "/api/projects/foo/status"
        quarantine = client.post(status, json={"status": "quarantined"}, headers=basic(admin))
        assert quarantine.status_code == 200
        for url in urls:
            for method in ("GET", "HEAD"):
                assert client.request(method, url, headers=reader).status_code == 404, url
        body = client.get("/simple/foo/", headers={**JSON, **reader}).content
        sha256 = hashlib.sha256(wheel_bytes("foo", "1.0")).hexdigest()
        assert sha256.encode() not in body
        assert b"foo-1.0" not in body
        held = list((store.state_dir / "held" / "foo").glob("*.json"))  # the private state
        assert any(sha256 in p.read_text() for p in held)
        lift = client.post(status, json={"status": "active"}, headers=basic(admin))
        assert lift.status_code == 200
        assert [client.get(u, headers=reader).status_code for u in urls] == [200, 200]
        page = client.get("/simple/foo/", headers={**JSON, **reader}).json()
        assert [f["sha256"] if "sha256" in f else f["hashes"]["sha256"] for f in page["files"]] == [
            sha256
        ]
