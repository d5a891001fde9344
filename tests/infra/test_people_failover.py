"""CloudFront's way to the page for people on a miss, step by step: the deployed edge function
sends ``/project/<name>/`` to the bucket under the page's key; the bucket has no such object;
the origin group of ``/project/*`` (tests/infra/test_template.py) sends the same request, path
and all, to the API, which answers 404 with the page. pip's and uv's misses never take it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from tests.dists import wheel_bytes, wheel_name
from tests.infra.test_edge_function import _event, run_function


def test_a_mistyped_project_page_reaches_the_api_as_its_key_and_gets_the_page(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "index")
    key = f"packages/rocket-science/{wheel_name('rocket-science', '1.0')}"
    store.put(key, wheel_bytes("rocket-science", "1.0"))
    Indexer(store).apply([Landed(key)])
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    [forwarded] = run_function([_event("GET", "/project/Rocket-Sience/", "", browser)])
    assert forwarded["statusCode"] == 301  # the name is normalized first
    [forwarded] = run_function([_event("GET", "/project/rocket-sience/", "", browser)])
    uri = forwarded["uri"]
    assert store.head(uri.lstrip("/")) is None  # the bucket's 404: the group fails over
    # The failover carries what the behaviour's policies forward: no Accept, no credentials.
    answer = TestClient(create_app(store, Settings())).get(uri)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "<code>/project/rocket-sience/</code>" in answer.text
    assert 'href="/project/rocket-science/"' in answer.text
    # The page a person reaches exists: the same path is a 200 from the bucket.
    [found] = run_function([_event("GET", "/project/rocket-science/", "", browser)])
    assert store.head(found["uri"].lstrip("/")) is not None
