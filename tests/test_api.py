"""The upload and admin API through FastAPI's TestClient (auth, idempotency, yank, delete)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic
from tests.dists import sdist_bytes, sdist_name, upload_form, wheel_bytes, wheel_name

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _post(
    client: TestClient,
    data: bytes,
    filename: str,
    name: str,
    version: str,
    token: str | None,
    path: str = "/legacy/",
    **fields: str | None,
):  # type: ignore[no-untyped-def]
    return client.post(
        path,
        data=upload_form(data, filename, name, version, **fields),
        files={"content": (filename, data)},
        headers=basic(token) if token else {},
    )


@pytest.fixture
def client(store: LocalStore) -> TestClient:
    return TestClient(create_app(store, Settings(max_upload_size=10 * 1024 * 1024)))


@pytest.mark.parametrize("path", ["/legacy/", "/legacy", "/"])
def test_upload_paths_and_idempotency(client: TestClient, store: LocalStore, path: str) -> None:
    token = add_token(store, "upload")
    data = wheel_bytes("foo", "1.0")
    name = wheel_name("foo", "1.0")
    assert _post(client, data, name, "foo", "1.0", token, path).status_code == 200
    first = client.get("/simple/foo/", headers=JSON).json()
    assert _post(client, data, name, "foo", "1.0", token, path).status_code == 200
    assert client.get("/simple/foo/", headers=JSON).json() == first
    other = wheel_bytes("foo", "1.0", payload=b"x")
    response = _post(client, other, name, "foo", "1.0", token, path)
    assert response.status_code == 400
    assert response.text.startswith("File already exists ('foo-1.0-py3-none-any.whl'")
    metadata = client.get(f"/packages/foo/{name}.metadata")
    assert metadata.status_code == 200
    assert metadata.content.startswith(b"Metadata-Version: 2.1\nName: foo")


def test_name_is_canonicalized_and_one_sdist_per_release(
    client: TestClient, store: LocalStore
) -> None:
    token = add_token(store, "upload")
    data = sdist_bytes("Foo_Bar", "1.0")
    assert (
        _post(client, data, sdist_name("foo-bar", "1.0"), "Foo_Bar", "1.0", token).status_code
        == 200
    )
    wheel = wheel_bytes("foo-bar", "1.0")
    assert (
        _post(client, wheel, wheel_name("foo-bar", "1.0"), "foo-bar", "1.0", token).status_code
        == 200
    )
    page = client.get("/simple/foo-bar/", headers=JSON).json()
    assert len(page["files"]) == 2


def test_auth_statuses(client: TestClient, store: LocalStore) -> None:
    data = wheel_bytes("billing-core", "1.0")
    name = wheel_name("billing-core", "1.0")
    missing = _post(client, data, name, "billing-core", "1.0", None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Basic realm="skypi"'
    assert _post(client, data, name, "billing-core", "1.0", "skypi_wrong").status_code == 403
    reader = add_token(store, "read")
    assert _post(client, data, name, "billing-core", "1.0", reader).status_code == 403
    other_project = add_token(store, "upload", projects={"ml-models"})
    refused = _post(client, data, name, "billing-core", "1.0", other_project)
    assert refused.status_code == 403
    assert "billing-core" in refused.text
    scoped = add_token(store, "upload", projects={"Billing.Core"})
    assert _post(client, data, name, "billing-core", "1.0", scoped).status_code == 200
    assert client.get("/simple/billing-core/").status_code == 200  # public reads by default


def test_yank_unyank_delete(client: TestClient, store: LocalStore, folder: Path) -> None:
    uploader = add_token(store, "upload")
    admin = add_token(store, "admin")
    for version in ("1.0", "2.0"):
        _post(
            client,
            wheel_bytes("foo", version),
            wheel_name("foo", version),
            "foo",
            version,
            uploader,
        )
    body = {"version": "2.0", "reason": "broken"}
    assert client.post("/api/projects/foo/yank", json=body).status_code == 401
    assert (
        client.post("/api/projects/foo/yank", json=body, headers=basic(uploader)).status_code == 403
    )
    response = client.post("/api/projects/Foo/yank", json=body, headers=basic(admin))
    assert response.json() == {"yanked": [wheel_name("foo", "2.0")]}
    files = {f["filename"]: f for f in client.get("/simple/foo/", headers=JSON).json()["files"]}
    assert files[wheel_name("foo", "2.0")]["yanked"] == "broken"
    assert 'data-yanked="broken"' in client.get("/simple/foo/").text
    again = client.post("/api/projects/foo/yank", json=body, headers=basic(admin))
    assert again.status_code == 404
    client.post("/api/projects/foo/unyank", json={"version": "2.0"}, headers=basic(admin))
    assert "data-yanked" not in client.get("/simple/foo/").text
    gone = client.delete(
        f"/api/projects/foo/files/{wheel_name('foo', '1.0')}", headers=basic(admin)
    )
    assert gone.json() == {"deleted": [wheel_name("foo", "1.0")]}
    assert not (folder / "foo" / wheel_name("foo", "1.0")).exists()
    names = [f["filename"] for f in client.get("/simple/foo/", headers=JSON).json()["files"]]
    assert names == [wheel_name("foo", "2.0")]


def test_health(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"


def test_oversize_declared_body_is_refused_before_reading(store: LocalStore) -> None:
    client = TestClient(create_app(store, Settings(upload_auth=False, max_upload_size=1024)))
    response = client.post(
        "/legacy/",
        content=b"x" * 100,
        headers={
            "content-length": str(100 * 1024 * 1024),
            "content-type": "multipart/form-data; boundary=x",
        },
    )
    assert response.status_code == 400
    assert response.text.startswith("File too large")


def test_a_page_read_while_it_is_rewritten_is_whole(folder: Path, store: LocalStore) -> None:
    """Reads of a page being rewritten get one version whole (bytes, length and ETag
    together), never the new length with the old bytes."""
    import threading

    versions = [b"<html>" + b"x" * n + b"</html>" for n in (10, 5000, 300, 70000)]
    store.put("simple/race/index.html", versions[0])
    done = threading.Event()

    def rewrite() -> None:
        i = 0
        while not done.is_set():
            i += 1
            store.put("simple/race/index.html", versions[i % len(versions)])

    writer = threading.Thread(target=rewrite)
    writer.start()
    client = TestClient(create_app(store))
    try:
        for _ in range(150):
            response = client.get(
                "/simple/race/", headers={"Accept": "text/html", "Accept-Encoding": "identity"}
            )
            assert response.content in versions
            assert int(response.headers["content-length"]) == len(response.content)
    finally:
        done.set()
        writer.join()


def test_a_page_too_contended_to_write_answers_503_and_a_retry_lists_the_file(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that keeps losing its compare-and-swap gives up with 503 and Retry-After (not
    a 500); the stored file is listed by the retry twine makes."""
    from skypi.indexer import writer
    from skypi.store.base import PreconditionFailed

    client = TestClient(create_app(store, Settings(max_upload_size=10 * 1024 * 1024)))
    token = add_token(store, "upload")
    original = LocalStore.put
    monkeypatch.setattr(writer, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(writer, "_pause", lambda attempt: None)

    def losing(self, key, body, **kwargs):  # type: ignore[no-untyped-def]
        if key == "simple/busy/index.json":
            raise PreconditionFailed(key)  # another writer always got there first
        return original(self, key, body, **kwargs)

    monkeypatch.setattr(LocalStore, "put", losing)
    data, name = wheel_bytes("busy", "1.0"), wheel_name("busy", "1.0")
    response = _post(client, data, name, "busy", "1.0", token)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "try again" in response.text
    monkeypatch.setattr(LocalStore, "put", original)
    assert _post(client, data, name, "busy", "1.0", token).status_code == 200
    files = client.get("/simple/busy/", headers=JSON).json()["files"]
    assert [f["filename"] for f in files] == [name]


def test_an_upload_to_a_damaged_page_says_how_to_repair_it_and_leaves_nothing(
    store: LocalStore, folder: Path
) -> None:
    client = TestClient(
        create_app(store, Settings(max_upload_size=10 * 1024 * 1024)), raise_server_exceptions=False
    )
    token = add_token(store, "upload")
    store.put("simple/foo/index.json", b'{"meta": {}, "files": 5}')  # edited by hand
    name = wheel_name("foo", "1.0")
    response = _post(client, wheel_bytes("foo", "1.0"), name, "foo", "1.0", token)
    assert response.status_code == 500
    assert "a project page cannot be read" in response.text
    assert "skypi reindex" in response.text
    assert not (folder / "foo" / name).exists()
