"""The page writer: compare-and-swap on every shared page, followers that end on the newest
page, and kept ETags that never make a write go wrong (only save a read)."""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from skypi.core.landing import SiteSummary, Upload
from skypi.core.pages import RootListing
from skypi.core.render import render_root_html
from skypi.indexer.service import Indexer, Landed
from skypi.indexer.writer import PageWriter
from skypi.store.base import Body, ObjectInfo
from skypi.store.local import LocalStore
from tests.dists import wheel_bytes, wheel_name


def _name(text: str) -> NormalizedName:
    return canonicalize_name(text)


def test_a_kept_root_listing_that_went_stale_is_read_again(tmp_path: Path) -> None:
    """Two processes (two writers, each keeping the listing it wrote last): neither loses
    the other's projects, and an "unchanged" verdict is never taken from a stale copy."""
    store = LocalStore(tmp_path / "packages")
    one, other = PageWriter(store), PageWriter(store)
    one.update_root({_name("a"): ("a", "")})
    other.update_root({_name("b"): ("b", "")})  # one's kept copy is stale now
    one.update_root({_name("c"): ("c", "")})
    root = RootListing.from_json_bytes(store.get("simple/index.json")[1])
    assert sorted(root.projects) == ["a", "b", "c"]
    other.update_root({_name("a"): (None, "")})  # a left, behind one's back
    # looked: it is gone already (stored exactly as one would have written it, so one cannot
    # tell it from its own write whose reply was lost: it may write what follows it again)
    assert "a" not in (one.update_root({_name("a"): (None, "")}) or RootListing()).projects
    one.update_root({_name("a"): ("a", "")})  # and back again: one must not believe its copy
    root = RootListing.from_json_bytes(store.get("simple/index.json")[1])
    assert sorted(root.projects) == ["a", "b", "c"]
    for key in ("simple/index.html", "simple/index.v1html"):
        assert store.get(key)[1] == render_root_html(root)
        assert gzip.decompress(store.get(f"{key}.gz")[1]) == render_root_html(root)


def test_concurrent_writers_of_the_landing_page_lose_no_upload(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "packages")
    writers = [PageWriter(store) for _ in range(4)]
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    def upload(i: int) -> None:
        name = f"p{i}"
        writers[i % 4].update_landing([Upload(_name(name), name, "1.0", f"{name}.whl", moment)])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(upload, range(16)))
    summary = SiteSummary.from_landing(store.get("site/index.html")[1])
    assert summary is not None
    assert sorted(u.filename for u in summary.recent) == sorted(f"p{i}.whl" for i in range(16))


def test_concurrent_new_projects_through_separate_indexers_are_all_listed(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "packages")
    indexers = [Indexer(store) for _ in range(3)]

    def arrive(i: int) -> None:
        name = f"proj{i}"
        key = f"packages/{name}/{wheel_name(name, '1.0')}"
        store.put(key, wheel_bytes(name, "1.0"))
        indexers[i % 3].apply([Landed(key)])

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(arrive, range(24)))
    root = RootListing.from_json_bytes(store.get("simple/index.json")[1])
    assert sorted(root.projects) == sorted(f"proj{i}" for i in range(24))
    summary = SiteSummary.from_landing(store.get("site/index.html")[1])
    assert summary is not None
    assert summary.projects == 24
    assert store.get("simple/index.html")[1] == render_root_html(root)


def test_a_landing_page_of_an_older_version_keeps_its_uploads(tmp_path: Path) -> None:
    """Older versions kept the landing page's manifest beside it: it is taken over."""
    store = LocalStore(tmp_path / "packages")
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    old = SiteSummary(projects=1).with_uploads([Upload(_name("a"), "A", "1", "a-1.whl", moment)])
    store.put("site/index.json", old.to_json_bytes())
    store.put("site/index.html", b"<!DOCTYPE html><p>an older landing page</p>")
    PageWriter(store).update_landing([Upload(_name("b"), "B", "1", "b-1.whl", moment)])
    summary = SiteSummary.from_landing(store.get("site/index.html")[1])
    assert summary is not None
    assert [u.filename for u in summary.recent] == ["b-1.whl", "a-1.whl"]


class _GatedStore(LocalStore):
    """Counts writes by key, and holds the first write of ``gated`` until released."""

    def __init__(self, root: Path, gated: str) -> None:
        super().__init__(root)
        self.gated, self.writes = gated, Counter[str]()
        self.reached, self.release = threading.Event(), threading.Event()

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        self.writes[key] += 1
        if key == self.gated and not self.reached.is_set():
            self.reached.set()
            self.release.wait(30)
        return super().put(key, body, **kwargs)


def test_a_page_being_followed_by_one_thread_is_not_followed_again_by_another(
    tmp_path: Path,
) -> None:
    """``skypi serve``: an upload lists its file and writes what follows the page; the folder
    watcher sees the same file land and finds it listed, with the page's gzip variant not yet
    written. It waits for the upload's writes to end instead of writing them all again."""
    store = _GatedStore(tmp_path / "packages", "simple/demo/index.json.gz")
    indexer = Indexer(store)  # one per process: the upload API's and the watcher's
    key = f"packages/demo/{wheel_name('demo', '1.0')}"
    store.put(key, wheel_bytes("demo", "1.0"))
    upload = threading.Thread(target=indexer.apply, args=([Landed(key)],))
    upload.start()
    assert store.reached.wait(30)  # the page is written, its gzip variant not yet
    watcher = threading.Thread(target=indexer.apply, args=([Landed(key)],))
    watcher.start()
    watcher.join(1.0)  # waiting for the upload's writes (it would be done by now otherwise)
    store.release.set()
    upload.join(30)
    watcher.join(30)
    followers = [
        "simple/demo/index.html",
        "simple/demo/index.v1html.gz",
        "site/project/demo/index.html",
    ]
    assert [store.writes[k] for k in ["simple/demo/index.json", *followers]] == [1, 1, 1, 1]
    assert store.writes["simple/demo/index.json.gz"] == 1
    assert indexer.pages.followed(indexer.pages.read(_name("demo")))
