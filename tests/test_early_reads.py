"""``skypi serve`` answers reads before its API is loaded (:mod:`skypi.local.early`): the same
bytes and headers as the whole app, and an upload that comes early waits for the API."""

from __future__ import annotations

import asyncio
import base64
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import skypi.api.app as app_module
from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.indexer.service import Indexer
from skypi.local.early import LateApp, early_app
from skypi.local.serve import adopt
from skypi.store.local import LocalStore
from tests.conftest import add_token
from tests.dists import sdist_bytes, sdist_name, upload_form, wheel_bytes, wheel_name

JSON = "application/vnd.pypi.simple.v1+json"
READS: list[tuple[str, str, dict[str, str]]] = [
    ("GET", "/simple/", {}),
    ("GET", "/simple/", {"accept": JSON, "accept-encoding": "gzip"}),
    ("GET", "/simple/p0/", {"accept": JSON}),
    ("GET", "/simple/p0/", {"accept": "text/html", "accept-encoding": "gzip"}),
    ("HEAD", "/simple/P0/", {}),
    ("GET", "/simple/p1/", {"if-none-match": "*"}),
    ("GET", f"/packages/p0/{wheel_name('p0', '1.0')}", {}),
    ("GET", f"/packages/p0/{wheel_name('p0', '1.0')}.metadata", {"range": "bytes=0-9"}),
    ("GET", "/simple/nothing-here/", {"accept": "text/html", "sec-fetch-dest": "document"}),
    ("GET", "/", {"accept": "text/html"}),
    ("GET", "/project/p1/", {}),
    ("POST", "/simple/", {}),
]


def _answers(app: Any, requests: list[tuple[str, str, dict[str, str]]]) -> list[Any]:
    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            answers = [await client.request(m, u, headers=h) for m, u, h in requests]
        return [(r.status_code, sorted(r.headers.multi_items()), r.content) for r in answers]

    return asyncio.run(run())


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    folder = tmp_path / "packages"
    for i in range(2):
        (folder / f"p{i}").mkdir(parents=True)
        (folder / f"p{i}" / wheel_name(f"p{i}", "1.0")).write_bytes(wheel_bytes(f"p{i}", "1.0"))
        (folder / f"p{i}" / sdist_name(f"p{i}", "1.0")).write_bytes(sdist_bytes(f"p{i}", "1.0"))
    adopt(LocalStore(folder), show_progress=False)
    return LocalStore(folder)


def held_api(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The full app's loading waits until the returned event is set (at most 30 s)."""
    gate = threading.Event()
    build = app_module.create_api

    def slow(*args: Any, **kwargs: Any) -> Any:
        assert gate.wait(30)
        return build(*args, **kwargs)

    monkeypatch.setattr(app_module, "create_api", slow)
    return gate


@pytest.mark.parametrize("private", [False, True])
def test_reads_before_the_api_is_loaded_are_the_whole_apps_bytes_and_headers(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch, private: bool
) -> None:
    settings = Settings(private=private, upload_auth=private)
    indexer = Indexer(store)
    reads = READS
    if private:  # each read without a token, then with one
        token = base64.b64encode(f"__token__:{add_token(store, 'read')}".encode()).decode()
        reads = READS + [(m, u, h | {"authorization": f"Basic {token}"}) for m, u, h in READS]
    reference = _answers(create_app(store, settings, indexer=indexer), reads)
    statuses = [status for status, _, _ in reference]
    assert statuses[:3] == ([401] * 3 if private else [200] * 3)
    assert statuses[-10:-8] == [200, 200]  # a read token reads
    gate = held_api(monkeypatch)
    app, api = early_app(store, settings, indexer)
    api.start()
    try:
        early = _answers(app, reads)
        assert not api.join(0)  # every read above was answered without the API
    finally:
        gate.set()
    assert api.join(30)
    assert early == reference
    assert _answers(app, reads) == reference


def test_an_upload_before_the_api_is_loaded_waits_for_it_and_is_listed(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = held_api(monkeypatch)
    app, api = early_app(store, Settings(upload_auth=False), Indexer(store))
    api.start()
    data, filename = wheel_bytes("late", "1.0"), wheel_name("late", "1.0")

    async def run() -> tuple[int, bool, bytes]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            upload = asyncio.create_task(
                client.post(
                    "/legacy/",
                    data=upload_form(data, filename, "late", "1.0"),
                    files={"content": (filename, data)},
                )
            )
            for _ in range(20):  # the request reaches the waiting API; no answer comes yet
                await asyncio.sleep(0.01)
            waited = not upload.done()
            gate.set()
            answer = await upload
            page = await client.get("/simple/late/", headers={"accept": JSON})
        return answer.status_code, waited, page.content

    status, waited, page = asyncio.run(run())
    assert waited
    assert status == 200
    assert filename.encode() in page


def test_an_api_that_cannot_be_loaded_answers_503_with_retry_after() -> None:
    def broken() -> Any:
        raise ImportError("no fastapi")

    late = LateApp(broken)
    late.start()
    assert not late.join(30)

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=late)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post("/legacy/", content=b"x")

    answer = asyncio.run(run())
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
