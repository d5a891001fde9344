"""Real pip through a view over a file too big to fetch while it waits: pip follows the view's
redirect to upstream (checking the page's hash), the server fills the file in the background,
and pip's next download comes from the index. The server runs in this process with the fill
limit of the test (a few hundred bytes), over HTTP on loopback."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from skypi.core.keys import view_file_key
from skypi.core.views import parse_policy
from skypi.indexer.fills import BackgroundFills
from skypi.indexer.views import Views
from skypi.store.local import LocalStore
from tests.dists import wheel_name
from tests.e2e.test_views import _download, in_process
from tests.upstream import StaticUpstream

pytestmark = pytest.mark.e2e


def test_pip_gets_a_big_file_from_upstream_then_from_the_index_once_filled(
    tmp_path: Path, env: dict[str, str]
) -> None:
    upstream = StaticUpstream().start()
    data = upstream.add_wheel("demo", "1.0", datetime.now(UTC) - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    store = LocalStore(tmp_path / "packages")
    views = Views(store, fill_limit=200)  # bytes: the wheel is past it
    fills = BackgroundFills(views)
    views.background = fills.submit
    views.save(parse_policy("safe", {"upstream": upstream.url}), new=True)
    stack = contextlib.ExitStack()
    try:
        port = stack.enter_context(in_process(store, views))
        view = f"http://127.0.0.1:{port}/view/safe/simple/"
        assert _download(view, "demo", env, tmp_path / "a") == [name]  # through the redirect
        assert (tmp_path / "a" / name).read_bytes() == data
        assert fills.join(60)
        assert store.get(view_file_key("safe", "demo", name))[1] == data
        fetched = upstream.requests.count(f"/files/{name}")
        assert fetched == 2  # pip, redirected; then the fill
        assert _download(view, "demo", env, tmp_path / "b") == [name]
        assert (tmp_path / "b" / name).read_bytes() == data
        assert upstream.requests.count(f"/files/{name}") == fetched  # from the index now
    finally:
        stack.close()
        fills.stop()
        upstream.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("skypi-fill")]
