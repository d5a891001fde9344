"""Files a view does not fetch while a client waits (``skypi serve``): one larger than the fill
limit (by upstream's page, or by its Content-Length when the page gives no size) or one whose
transfer stalls past the wait budget is answered with a redirect to upstream at once, and
filled in the background (skypi.indexer.fills); the next request is served from the index.
A lying upstream leaves nothing; a file is filled once at a time; the pool stops with the
server. The limit is a few hundred bytes here, so the files stay small."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.keys import view_file_key
from skypi.core.views import parse_policy
from skypi.indexer.fills import BackgroundFills
from skypi.indexer.views import FillRequest, Views
from skypi.store.local import LocalStore
from skypi.store.upstream import Upstream, UpstreamLimits
from tests.dists import wheel_name
from tests.upstream import StaticUpstream

NOW = datetime.now(UTC)
LIMIT = 200  # bytes: every test wheel is larger


@pytest.fixture
def world(
    tmp_path: Path, upstream: StaticUpstream
) -> Iterator[tuple[TestClient, Views, BackgroundFills]]:
    store = LocalStore(tmp_path / "packages")
    # a read that stalls for 2 seconds is a timeout here (the server's own: 10 s)
    views = Views(store, Upstream(UpstreamLimits(timeout=2.0)), fill_limit=LIMIT, wait_budget=5.0)
    fills = BackgroundFills(views)
    views.background = fills.submit
    views.save(parse_policy("safe", {"upstream": upstream.url}), new=True)
    try:
        with TestClient(create_app(store, Settings(upload_auth=False), views=views)) as client:
            yield client, views, fills
    finally:
        upstream.release.set()
        fills.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("skypi-fill")]


def _file_requests(upstream: StaticUpstream, name: str) -> int:
    return upstream.requests.count(f"/files/{name}")


def _redirected_then_filled(client: TestClient, fills: BackgroundFills, name: str) -> None:
    first = client.get(f"/view/safe/files/demo/{name}", follow_redirects=False)
    assert first.status_code == 307, first.text
    assert first.headers["location"].endswith(f"/files/{name}")
    assert first.headers["cache-control"] == "no-store"
    assert fills.join(30)


def test_a_file_past_the_limit_by_its_page_is_redirected_filled_then_served_from_the_index(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, fills = world
    data = upstream.add_wheel("demo", "1.0", NOW - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    assert len(data) > LIMIT
    _redirected_then_filled(client, fills, name)
    assert views.store.get(view_file_key("safe", "demo", name))[1] == data
    assert _file_requests(upstream, name) == 1  # the fill's only: the page said it is too big
    again = client.get(f"/view/safe/files/demo/{name}", follow_redirects=False)
    assert again.status_code == 200
    assert again.content == data
    assert _file_requests(upstream, name) == 1  # from the index
    assert fills.filled == 1


def test_a_file_past_the_limit_by_its_content_length_is_not_waited_for(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, fills = world
    data = upstream.add_wheel("demo", "1.0", NOW - timedelta(days=30))
    del upstream.pages["demo"]["files"][0]["size"]  # PEP 700's size is optional
    name = wheel_name("demo", "1.0")
    _redirected_then_filled(client, fills, name)
    assert views.store.get(view_file_key("safe", "demo", name))[1] == data
    assert _file_requests(upstream, name) == 2  # its headers, then the fill


def test_a_transfer_that_stalls_past_the_wait_is_redirected_and_filled(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, fills = world
    views.fill_limit = 10 * 1024 * 1024  # not too big: too slow
    data = upstream.add_wheel("demo", "1.0", NOW - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    upstream.stall.add(f"/files/{name}")  # the first request stalls half-way
    _redirected_then_filled(client, fills, name)
    assert views.store.get(view_file_key("safe", "demo", name))[1] == data
    assert _file_requests(upstream, name) == 2
    assert client.get(f"/view/safe/files/demo/{name}").content == data


def test_a_lying_upstream_leaves_nothing_behind_and_is_not_asked_again(
    world: Any, upstream: StaticUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """A fill that finds other bytes than the page's SHA-256 stores nothing, and the view
    leaves the file out from then on (``mismatch``): the next request is a 404 saying why,
    with no new fill and no new request to upstream."""
    client, views, fills = world
    upstream.add_wheel("demo", "1.0", NOW - timedelta(days=30), served=b"x" * 1000)
    name = wheel_name("demo", "1.0")
    _redirected_then_filled(client, fills, name)
    assert views.store.head(view_file_key("safe", "demo", name)) is None
    assert "does not match" in caplog.text
    assert fills.filled == 0
    assert list(views.store.list("views/safe/files/")) == []
    again = client.get(f"/view/safe/files/demo/{name}", follow_redirects=False)
    assert again.status_code == 404, again.text
    assert "mismatch" in again.text
    assert _file_requests(upstream, name) == 1


def test_a_file_is_filled_once_however_many_ask_while_it_is_filled(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, fills = world
    data = upstream.add_wheel("demo", "1.0", NOW - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    upstream.stall.add(f"/files/{name}")  # the fill stalls until released
    views.upstream = Upstream(UpstreamLimits(timeout=30.0))
    for _ in range(3):
        answer = client.get(f"/view/safe/files/demo/{name}", follow_redirects=False)
        assert answer.status_code == 307
    assert fills.submit(FillRequest("safe", "demo", name)) is False  # running already
    upstream.release.set()
    assert fills.join(30)
    assert _file_requests(upstream, name) == 1
    assert views.store.get(view_file_key("safe", "demo", name))[1] == data


def test_fills_stop_with_the_server_part_way_and_store_nothing(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, fills = world
    upstream.add_wheel("demo", "1.0", NOW - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    upstream.stall.add(f"/files/{name}")
    views.upstream = Upstream(UpstreamLimits(timeout=30.0))
    assert client.get(f"/view/safe/files/demo/{name}", follow_redirects=False).status_code == 307
    fills.stopping.set()  # what stop() does first; then the stalled transfer goes on
    upstream.release.set()
    fills.stop()
    assert views.store.head(view_file_key("safe", "demo", name)) is None
    assert fills.filled == 0
    assert fills.submit(FillRequest("safe", "demo", name)) is False  # stopped: takes none
    assert not [t for t in threading.enumerate() if t.name.startswith("skypi-fill")]


def test_a_metadata_file_is_always_fetched_while_the_client_waits(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, fills = world
    views.fill_limit = 10  # past it, yet never sent elsewhere: a client needs it to resolve
    upstream.add_wheel("demo", "1.0", NOW - timedelta(days=30))
    name = wheel_name("demo", "1.0") + ".metadata"
    answer = client.get(f"/view/safe/files/demo/{name}", follow_redirects=False)
    assert answer.status_code == 200
    assert answer.content == upstream.files[f"/files/{name}"]
    assert fills.filled == 0
