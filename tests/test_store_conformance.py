"""The object-store port's contract. Every adapter runs this same suite (add it to ADAPTERS)."""

from __future__ import annotations

import errno
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skypi.store.base import NotFound, PreconditionFailed, Store, put_copies
from skypi.store.local import LocalStore
from skypi.store.s3 import S3Store
from tests.emulated import s3_client, s3_store


def _local(request: pytest.FixtureRequest, tmp: Path) -> Store:
    return LocalStore(tmp / "packages")


def _s3(request: pytest.FixtureRequest, tmp: Path) -> Store:
    return s3_store(request.getfixturevalue("moto_endpoint"))


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], Store]] = {"local": _local, "s3": _s3}


@pytest.fixture(params=sorted(ADAPTERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return ADAPTERS[request.param](request, tmp_path)


def test_put_get_head_roundtrip(store: Store) -> None:
    info = store.put("simple/foo/index.json", b"{}")
    got, body = store.get("simple/foo/index.json")
    assert body == b"{}"
    assert got.etag == info.etag
    assert got.size == 2
    head = store.head("simple/foo/index.json")
    assert head is not None
    assert head.etag == info.etag


def test_missing(store: Store) -> None:
    assert store.head("simple/nope/index.json") is None
    with pytest.raises(NotFound):
        store.get("simple/nope/index.json")
    store.delete("simple/nope/index.json")  # no error


def test_create_only(store: Store) -> None:
    store.put("packages/foo/foo-1.0.tar.gz", b"one", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put("packages/foo/foo-1.0.tar.gz", b"two", if_none_match=True)
    assert store.get("packages/foo/foo-1.0.tar.gz")[1] == b"one"


def test_compare_and_swap(store: Store) -> None:
    first = store.put("simple/foo/index.json", b"1")
    second = store.put("simple/foo/index.json", b"2", if_match=first.etag)
    assert second.etag != first.etag
    with pytest.raises(PreconditionFailed):
        store.put("simple/foo/index.json", b"3", if_match=first.etag)
    assert store.get("simple/foo/index.json")[1] == b"2"
    with pytest.raises(PreconditionFailed):
        store.put("simple/missing/index.json", b"x", if_match=first.etag)


def test_etag_changes_with_the_bytes(store: Store) -> None:
    first = store.put("simple/foo/index.json", b"one")
    second = store.put("simple/foo/index.json", b"two")
    third = store.put("simple/foo/index.json", b"one!")
    assert len({first.etag, second.etag, third.etag}) == 3


def test_ranged_and_streamed_reads(store: Store) -> None:
    data = bytes(range(256)) * 10
    store.put("packages/foo/foo-1.0-py3-none-any.whl", data)
    assert store.read_range("packages/foo/foo-1.0-py3-none-any.whl", 10, 5) == data[10:15]
    with store.open("packages/foo/foo-1.0-py3-none-any.whl") as fh:
        assert fh.read() == data
    with store.open("packages/foo/foo-1.0-py3-none-any.whl", 2000) as fh:
        assert fh.read() == data[2000:]


def test_list_in_order_by_prefix(store: Store) -> None:
    for key in ("packages/b/b-1.0.tar.gz", "packages/a/a-1.0.tar.gz", "simple/a/index.json"):
        store.put(key, b"x")
    assert [i.key for i in store.list("packages/")] == [
        "packages/a/a-1.0.tar.gz",
        "packages/b/b-1.0.tar.gz",
    ]
    assert [i.key for i in store.list("simple/")] == ["simple/a/index.json"]


def test_delete(store: Store) -> None:
    store.put("packages/a/a-1.0.tar.gz", b"x")
    store.delete("packages/a/a-1.0.tar.gz")
    assert store.head("packages/a/a-1.0.tar.gz") is None


def test_conditional_delete_removes_only_the_version_it_names(store: Store) -> None:
    """A delete with ``if_match`` removes the object only while it holds the bytes of that
    ETag: a replaced or missing object is refused (S3: 412 or 404), the current one stays."""
    key = "packages/foo/foo-1.0-py3-none-any.whl"
    old = store.put(key, b"old")
    store.delete(key)
    new = store.put(key, b"new")
    with pytest.raises(PreconditionFailed):
        store.delete(key, if_match=old.etag)
    assert store.get(key)[1] == b"new"
    store.delete(key, if_match=new.etag)
    assert store.head(key) is None
    with pytest.raises(PreconditionFailed):
        store.delete(key, if_match=new.etag)


def test_concurrent_create_only_has_one_winner(store: Store) -> None:
    def attempt(i: int) -> bool:
        try:
            store.put("simple/race/index.json", b"%d" % i, if_none_match=True)
        except PreconditionFailed:
            return False
        return True

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert sum(pool.map(attempt, range(32))) == 1


def _increment(store: Store, times: int) -> None:
    """Add one to a counter object ``times`` times, by compare-and-swap."""
    for _ in range(times):
        while True:
            info, body = store.get("simple/counter/index.json")
            try:
                store.put("simple/counter/index.json", b"%d" % (int(body) + 1), if_match=info.etag)
                break
            except PreconditionFailed:
                continue


def test_concurrent_cas_counter_loses_no_update(store: Store) -> None:
    store.put("simple/counter/index.json", b"0")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: _increment(store, 1), range(40)))
    assert store.get("simple/counter/index.json")[1] == b"40"


def _reopen(store: Store) -> tuple[str, ...]:
    """What a fresh process needs to open the same store."""
    if isinstance(store, LocalStore):
        return ("local", str(store.packages_dir))
    assert isinstance(store, S3Store)
    return ("s3", store.client.meta.endpoint_url, store.bucket)


def _increment_in_process(spec: tuple[str, ...], times: int) -> None:
    if spec[0] == "local":
        store: Store = LocalStore(Path(spec[1]))
    else:
        store = S3Store(spec[2], s3_client(spec[1]))
    _increment(store, times)


def test_cas_is_atomic_across_processes(store: Store) -> None:
    store.put("simple/counter/index.json", b"0")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_increment_in_process, args=(_reopen(store), 25)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert store.get("simple/counter/index.json")[1] == b"100"


def test_copies_are_each_their_own_object(store: Store) -> None:
    keys = ["simple/foo/index.html", "simple/foo/index.v1html"]
    store.put(keys[1], b"old")
    put_copies(store, keys, b"<html>1</html>")
    assert [store.get(key)[1] for key in keys] == [b"<html>1</html>"] * 2
    store.put(keys[0], b"<html>2</html>")  # replacing one leaves the other as it was
    assert store.get(keys[1])[1] == b"<html>1</html>"
    store.delete(keys[1])
    assert store.get(keys[0])[1] == b"<html>2</html>"
    assert [info.key for info in store.list("simple/")] == [keys[0]]  # no temporary file


def test_local_copies_are_one_file_written_once(tmp_path: Path) -> None:
    """A folder writes a page's twins as one file linked under both names: one temporary
    file and one flush where a put of each would make two."""
    store = LocalStore(tmp_path / "packages")
    keys = ["simple/foo/index.html", "simple/foo/index.v1html"]
    store.put(keys[0], b"old")
    put_copies(store, keys, b"<html>1</html>")
    first, second = (store.path_for(key).stat() for key in keys)
    assert (first.st_ino, first.st_nlink) == (second.st_ino, 2)
    assert oct(first.st_mode & 0o777) == oct(0o600)  # the state folder's files stay private
    assert sorted(p.name for p in store.path_for(keys[0]).parent.iterdir()) == [
        "index.html",
        "index.v1html",
    ]


def test_local_copies_without_links_are_put_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "packages")

    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted", dst)

    monkeypatch.setattr(os, "link", no_links)
    keys = ["simple/foo/index.html", "simple/foo/index.v1html"]
    put_copies(store, keys, b"<html>1</html>")
    assert [store.get(key)[1] for key in keys] == [b"<html>1</html>"] * 2
    assert store.path_for(keys[0]).stat().st_nlink == 1
    assert sorted(p.name for p in store.path_for(keys[0]).parent.iterdir()) == [
        "index.html",
        "index.v1html",
    ]


def test_local_keys_cannot_escape(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "packages")
    for key in ("packages/../x", "packages/.skypi/auth/tokens.json", "simple//x", "../x"):
        with pytest.raises(ValueError, match="invalid"):
            store.path_for(key)


def test_folders_are_the_distinct_next_segments(store: Store) -> None:
    """S3's ``CommonPrefixes`` (ListObjectsV2 with the delimiter ``/``), in S3's order."""
    for key in (
        "views/a/policy.json",
        "views/a/simple/x/index.json",
        "views/a-b/simple/y/index.json",
        "views/ab/policy.json",
        "views/due.json",
        "simple/z/index.json",
    ):
        store.put(key, b"{}")
    assert list(store.folders("views/")) == ["views/a-b/", "views/a/", "views/ab/"]
    assert list(store.folders("views/a")) == ["views/a-b/", "views/a/", "views/ab/"]
    assert list(store.folders("views/a/simple/")) == ["views/a/simple/x/"]
    assert list(store.folders("views/nothing/")) == []
    store.put("packages/p/p-1.0.tar.gz", b"1")
    store.put("packages/p/p-1.0.tar.gz.metadata", b"m")
    store.put("packages/q-r/q_r-1.0.tar.gz", b"1")
    assert list(store.folders("packages/")) == ["packages/p/", "packages/q-r/"]
