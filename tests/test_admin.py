"""Admin actions: the service over a real indexer, the routes against hostile input, and the
Python client (the CLI's) against the real app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.client.admin import AdminClient, AdminError
from skypi.core.errors import DoesNotExist, InvalidRequest
from skypi.indexer.admin import Admin, Deletion, StatusChange
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic
from tests.dists import sdist_bytes, sdist_name, wheel_bytes, wheel_name
from tests.e2e.conftest import free_port

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
WHEEL, SDIST = wheel_name("foo", "1.0"), sdist_name("foo", "1.0")


@pytest.fixture
def indexer(store: LocalStore) -> Indexer:
    """foo 1.0 (a wheel and an sdist) and foo 2.0 (a wheel), indexed."""
    files = {
        WHEEL: wheel_bytes("foo", "1.0"),
        SDIST: sdist_bytes("foo", "1.0"),
        wheel_name("foo", "2.0"): wheel_bytes("foo", "2.0"),
    }
    for name, data in files.items():
        store.put(f"packages/foo/{name}", data)
    indexer = Indexer(store)
    indexer.apply([Landed(f"packages/foo/{name}") for name in files])
    return indexer


def _yanked(indexer: Indexer) -> dict[str, str | None]:
    page = indexer.pages.read("foo").page  # type: ignore[arg-type]
    assert page is not None
    return {f.filename: f.yanked for f in page.files}


# -- the service ------------------------------------------------------------------------


def test_yank_a_release_by_an_equal_version_and_unyank_one_file(indexer: Indexer) -> None:
    admin = Admin(indexer)
    assert sorted(admin.yank("Foo", version="1.0.0", reason=" broken ")) == sorted([SDIST, WHEEL])
    assert _yanked(indexer) == {WHEEL: "broken", SDIST: "broken", wheel_name("foo", "2.0"): None}
    assert admin.unyank("foo", filename=WHEEL) == [WHEEL]
    assert _yanked(indexer)[WHEEL] is None
    with pytest.raises(DoesNotExist, match="already unyanked"):
        admin.unyank("foo", filename=WHEEL)


def test_delete_and_status_answer_what_they_did(indexer: Indexer, store: LocalStore) -> None:
    admin = Admin(indexer)
    assert admin.delete("FOO", WHEEL) == Deletion("foo", WHEEL, f"packages/foo/{WHEEL}")  # type: ignore[arg-type]
    assert store.head(f"packages/foo/{WHEEL}") is None
    assert WHEEL not in _yanked(indexer)
    with pytest.raises(DoesNotExist, match=re.escape(f"No file '{WHEEL}' in 'FOO'")):
        admin.delete("FOO", WHEEL)
    changed = admin.set_status("foo", "archived", " moved ")
    assert changed == StatusChange("foo", "archived", "moved")  # type: ignore[arg-type]
    with pytest.raises(DoesNotExist, match="No project 'bar'"):
        admin.set_status("bar", "archived")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a.yank("foo"), "exactly one of 'filename' or 'version'"),
        (lambda a: a.yank("foo", filename=WHEEL, version="1.0"), "exactly one"),
        (lambda a: a.yank("foo", version="1.0; rm -rf"), "is not a version (PEP 440)"),
        (lambda a: a.yank("foo", version="1.0", reason="\x1b[31mred"), "printable text"),
        (lambda a: a.yank("foo", version="1.0", reason="x" * 1001), "at most 1000"),
        (lambda a: a.unyank("foo\x00", version="1.0"), "not a project name"),
        (lambda a: a.delete("../foo", WHEEL), "not a project name"),
        (lambda a: a.delete("f" * 300, WHEEL), "too long"),
        (lambda a: a.set_status("foo", "retired", None), "must be one of active, archived"),
        (lambda a: a.set_status("foo", "archived", "a\nb"), "printable text"),
    ],
)
def test_what_cannot_be_done_says_why_and_changes_nothing(
    indexer: Indexer, call: object, message: str
) -> None:
    before = indexer.pages.read("foo")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        call(Admin(indexer))  # type: ignore[operator]
    assert indexer.pages.read("foo") == before  # type: ignore[arg-type]


# -- the routes -------------------------------------------------------------------------


@pytest.fixture
def client(indexer: Indexer, store: LocalStore) -> TestClient:
    return TestClient(create_app(store, Settings()), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("DELETE", f"/api/projects/foo/files/x/{WHEEL}", None, 404, f"No file 'x/{WHEEL}'"),
        ("DELETE", f"/api/projects/foo/files/x%2F{WHEEL}", None, 404, f"No file 'x/{WHEEL}'"),
        ("DELETE", "/api/projects/foo/files/..%2F..%2Fsimple%2Findex.json", None, 404, "No file"),
        ("DELETE", "/api/projects/foo/files/%00", None, 404, r"No file '\x00'"),
        ("DELETE", f"/api/projects/foo%00/files/{WHEEL}", None, 400, "not a project name"),
        ("DELETE", f"/api/projects/{'a' * 5000}/files/x.whl", None, 400, "too long"),
        ("POST", "/api/projects/foo%00/yank", {"version": "1.0"}, 400, "not a project name"),
        ("POST", "/api/projects/foo/yank", {"version": "one"}, 400, "is not a version"),
        ("POST", "/api/projects/foo/yank", {"version": "1.0", "reason": "\x1b]8;;"}, 400, "print"),
        ("POST", "/api/projects/foo/yank", {"version": "1.0", "filename": WHEEL}, 400, "one of"),
        ("POST", "/api/projects/foo/yank", {}, 400, "exactly one of"),
        ("POST", "/api/projects/foo/unyank", {"version": "1.0"}, 404, "already unyanked"),
        ("POST", "/api/projects/bar/yank", {"version": "1.0"}, 404, "no version 1.0 in 'bar'"),
        ("POST", "/api/projects/foo/status", {"status": "retired"}, 400, "must be one of"),
        (
            "POST",
            "/api/projects/foo/status",
            {"status": "archived", "reason": "\x00"},
            400,
            "print",
        ),
        ("POST", "/api/projects/bar/status", {"status": "archived"}, 404, "No project 'bar'"),
    ],
)
def test_hostile_admin_input_gets_a_clear_4xx_and_changes_nothing(
    client: TestClient,
    store: LocalStore,
    folder: Path,
    method: str,
    path: str,
    body: object,
    status: int,
    detail: str,
) -> None:
    before = sorted(p.relative_to(folder) for p in folder.rglob("*") if "auth" not in p.parts)
    page = client.get("/simple/foo/", headers=JSON).json()
    response = client.request(method, path, json=body, headers=basic(add_token(store, "admin")))
    assert (response.status_code, response.headers["content-type"]) == (status, "application/json")
    assert detail in response.json()["detail"]
    assert response.headers["x-skypi-reason"]  # the local server's status line says it too
    assert (
        sorted(p.relative_to(folder) for p in folder.rglob("*") if "auth" not in p.parts) == before
    )
    assert client.get("/simple/foo/", headers=JSON).json() == page


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"version": "1.0", "reason": "x" * 1001}, "reason"),
        ({"version": 1.0}, "version"),
        ({"filename": "f" * 10_000}, "filename"),
        ([{"version": "1.0"}], "body"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(
    client: TestClient, store: LocalStore, body: object, where: str
) -> None:
    response = client.post(
        "/api/projects/foo/yank", json=body, headers=basic(add_token(store, "admin"))
    )
    assert response.status_code == 422
    assert where in response.json()["detail"][0]["loc"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_bigger_than_any_admin_request_is_refused_as_it_arrives(
    client: TestClient, framing: str
) -> None:
    """FastAPI reads a body whole before the route runs: unbounded, one anonymous request could
    hold any amount of the server's memory."""
    body = b'{"version": "1.0", "reason": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    sent = (
        body
        if framing == "content-length"
        else (body[i : i + 65536] for i in range(0, len(body), 65536))
    )
    response = client.post(
        "/api/projects/foo/yank", content=sent, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {
        "detail": "An admin request's body holds at most 65,536 bytes of JSON."
    }


def test_a_token_for_another_project_or_scope_is_refused(
    client: TestClient, store: LocalStore
) -> None:
    page = client.get("/simple/foo/", headers=JSON).json()
    allowed = "The given token isn't allowed to admin for project 'foo'."
    for token, detail in (
        (add_token(store, "admin", projects={"bar"}), allowed),
        (add_token(store, "upload", projects={"foo"}), allowed),
        (add_token(store, "read"), allowed),
        ("skypi_not-a-token", "Invalid or revoked token."),
    ):
        for method, path, body in (
            ("POST", "/api/projects/foo/yank", {"version": "1.0"}),
            ("POST", "/api/projects/foo/status", {"status": "quarantined"}),
            ("DELETE", f"/api/projects/foo/files/{WHEEL}", None),
        ):
            response = client.request(method, path, json=body, headers=basic(token))
            assert (response.status_code, response.json()) == (403, {"detail": detail})
    anonymous = client.post("/api/projects/foo/yank", json={"version": "1.0"})
    assert anonymous.status_code == 401
    assert "www-authenticate" in anonymous.headers
    assert client.get("/simple/foo/", headers=JSON).json() == page


def test_openapi_documents_the_admin_answers(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for path, method, model in (
        ("/api/projects/{project}/yank", "post", "Yanked"),
        ("/api/projects/{project}/unyank", "post", "Unyanked"),
        ("/api/projects/{project}/status", "post", "StatusSet"),
        ("/api/projects/{project}/files/{filename}", "delete", "Deleted"),
    ):
        answers = spec["paths"][path][method]["responses"]
        ok = answers["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ok == f"#/components/schemas/{model}"
        assert schemas[model]["required"]
        for status in ("400", "401", "403", "404"):
            refused = answers[status]["content"]["application/json"]["schema"]["$ref"]
            assert refused == "#/components/schemas/ErrorDetail"
    assert schemas["ErrorDetail"]["required"] == ["detail"]


# -- the client -------------------------------------------------------------------------


def test_the_admin_client_against_the_app(client: TestClient, store: LocalStore) -> None:
    admin = AdminClient("http://testserver", add_token(store, "admin"), http=client)
    assert admin.yank("foo", version="2.0", reason="broken") == [wheel_name("foo", "2.0")]
    assert admin.unyank("foo", version="2.0") == [wheel_name("foo", "2.0")]
    assert admin.set_status("foo", "deprecated", "use bar") == ["foo deprecated"]
    assert admin.delete("foo", WHEEL) == [WHEEL]
    with pytest.raises(AdminError, match=re.escape(f"No file 'x/{WHEEL}' in 'foo'")) as refused:
        admin.delete("foo", f"x/{WHEEL}")  # sent encoded, answered for what it is
    assert refused.value.status == 404
    with pytest.raises(AdminError, match="String should have at most") as refused:
        admin.yank("foo", version="1.0", reason="x" * 1001)
    assert refused.value.status == 422
    with pytest.raises(AdminError, match="isn't allowed to admin") as refused:
        AdminClient("http://testserver", add_token(store, "upload"), http=client).yank(
            "foo", version="1.0"
        )
    assert refused.value.status == 403


def test_the_admin_client_says_when_the_index_cannot_be_reached() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(AdminError, match=re.escape(f"cannot reach the index at {url}")) as err:
        AdminClient(url, "t", timeout=5).yank("foo", version="1.0")
    assert err.value.status is None


@pytest.mark.parametrize("project", ["foo%00", "foo%0A", "-foo", "a" * 5000])
def test_provenance_of_a_name_no_project_can_have_is_a_404(
    client: TestClient, project: str
) -> None:
    response = client.get(f"/integrity/{project}/1.0/{WHEEL}/provenance")
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No provenance for this file."},
    )
