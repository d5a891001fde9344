"""The indexer: idempotent, order-independent, concurrent-safe, proportional to the change."""

from __future__ import annotations

import hashlib
import io
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skypi.core.pages import ProjectPage, RootListing
from skypi.core.plan import Mark
from skypi.indexer.service import Gone, Indexer, Landed
from skypi.local.startup import reconcile
from skypi.store.local import LocalStore
from tests.dists import metadata_text, sdist_bytes, sdist_name, wheel_bytes, wheel_name


def _drop(store: LocalStore, project: str, name: str, version: str, sdist: bool = False) -> str:
    filename = sdist_name(name, version) if sdist else wheel_name(name, version)
    key = f"packages/{project}/{filename}"
    data = sdist_bytes(name, version) if sdist else wheel_bytes(name, version)
    store.put(key, data)
    return key


def _pages(store: LocalStore) -> dict[str, bytes]:
    return {i.key: store.get(i.key)[1] for i in store.list("simple/")}


def test_landed_then_gone(store: LocalStore) -> None:
    indexer = Indexer(store)
    key = _drop(store, "demo", "Demo", "1.0")
    outcome = indexer.apply([Landed(key)])
    assert outcome.added == [wheel_name("demo", "1.0")]
    page = indexer.pages.read("demo").page  # type: ignore[arg-type]
    assert page is not None
    assert page.display_name == "Demo"
    assert store.head(key + ".metadata") is not None
    root, _ = indexer.pages.read_root()
    assert root.projects == {"demo": "Demo"}
    store.delete(key)
    assert indexer.apply([Gone(key)]).removed == [wheel_name("demo", "1.0")]
    assert store.head(key + ".metadata") is None
    assert indexer.pages.read_root()[0].projects == {}


def _listing(store: LocalStore) -> dict[str, list[tuple[object, ...]]]:
    pages = {}
    for key, body in _pages(store).items():
        if key.endswith("/index.json") and key != "simple/index.json":
            page = ProjectPage.from_json_bytes(body)
            pages[key] = [
                (f.filename, f.sha256, f.upload_time, f.metadata_sha256, f.key) for f in page.files
            ]
    return pages


def test_replays_and_any_order_give_the_same_pages(store: LocalStore) -> None:
    keys = [_drop(store, "p", "p", f"1.{i}") for i in range(6)]
    keys.append(_drop(store, "p", "p", "1.0", sdist=True))
    keys.append(_drop(store, "q", "q", "1.0"))
    store.delete(keys[2])
    events: list[Landed | Gone] = [Landed(k) for k in keys] + [Gone(keys[2])]
    indexer = Indexer(store)
    indexer.apply(events)
    in_order = _listing(store)
    assert len(in_order["simple/p/index.json"]) == 6

    for info in list(store.list("simple/")):
        store.delete(info.key)
    replay = events * 2
    random.Random(7).shuffle(replay)
    for event in replay:
        indexer.apply([event])
    assert _listing(store) == in_order
    settled = _pages(store)
    random.Random(8).shuffle(replay)
    indexer.apply(replay)
    assert _pages(store) == settled  # byte for byte: replays change nothing


def test_second_object_with_same_filename_is_refused(store: LocalStore) -> None:
    indexer = Indexer(store)
    first = _drop(store, "dup", "dup", "1.0")
    indexer.apply([Landed(first)])
    other = f"packages/elsewhere/{wheel_name('dup', '1.0')}"
    store.put(other, wheel_bytes("dup", "1.0", payload=b"other bytes"))
    outcome = indexer.apply([Landed(other)])
    assert outcome.added == []
    assert [k for k, _ in outcome.conflicts] == [other]
    page = indexer.pages.read("dup").page  # type: ignore[arg-type]
    assert page is not None
    assert [f.key for f in page.files] == [first]
    assert store.head(other + ".metadata") is None  # nothing left behind for the refused file
    assert store.head(first + ".metadata") is not None


def test_a_byte_identical_copy_in_another_folder_is_listed_once_and_is_no_conflict(
    store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    indexer = Indexer(store)
    first = _drop(store, "twin", "twin", "1.0")
    indexer.apply([Landed(first)])
    copy = f"packages/mirror/{wheel_name('twin', '1.0')}"
    store.put(copy, wheel_bytes("twin", "1.0"))
    caplog.set_level(logging.INFO)
    outcome = indexer.apply([Landed(copy)])
    assert outcome.conflicts == []
    assert [k for k, _ in outcome.duplicates] == [copy]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"{copy} is a copy of {first}" in caplog.text
    page = indexer.pages.read("twin").page  # type: ignore[arg-type]
    assert page is not None
    assert [f.key for f in page.files] == [first]
    assert store.head(copy + ".metadata") is None


def test_an_overwrite_in_place_in_a_folder_lists_the_stored_bytes_at_once(
    store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder keeps no earlier version to put back: the page lists the bytes that are there
    (pip's hash check passes again), with its ``.metadata`` and HTML made again, keeping the
    yank only the page knew, and one WARNING naming the file and both hashes."""
    indexer = Indexer(store)
    key = _drop(store, "ow", "ow", "1.0")
    indexer.apply([Landed(key)])
    indexer.update_files("ow", Mark("broken", version="1.0"))  # type: ignore[arg-type]
    before = indexer.pages.read("ow").page.files[0]  # type: ignore[arg-type,union-attr]
    meta = metadata_text("ow", "1.0", summary="Rebuilt in place")
    data = wheel_bytes("ow", "1.0", payload=b"rebuilt", metadata=meta)
    store.put(key, data)
    caplog.set_level(logging.INFO)
    outcome = indexer.apply([Landed(key)])
    new = hashlib.sha256(data).hexdigest()
    assert outcome.conflicts == []
    (entry,) = indexer.pages.read("ow").page.files  # type: ignore[arg-type,union-attr]
    assert (entry.sha256, entry.size, entry.yanked) == (new, len(data), "broken")
    assert entry.upload_time == before.upload_time
    assert store.get(key + ".metadata")[1] == meta.encode()
    assert entry.metadata_sha256 == hashlib.sha256(meta.encode()).hexdigest()
    html = store.get("simple/ow/index.html")[1].decode()
    assert f"sha256={new}" in html
    assert before.sha256 not in html
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(store.path_for(key)) in warning
    assert before.sha256 in warning
    assert new in warning
    assert indexer.apply([Landed(key)]).added == []  # seen again: nothing more to do


def test_junk_and_invalid_files_are_skipped(store: LocalStore) -> None:
    indexer = Indexer(store)
    store.put("packages/README.txt", b"hello")
    store.put("packages/x/broken-1.0-py3-none-any.whl", b"not a zip")
    store.put("packages/x/" + wheel_name("liar", "1.0"), wheel_bytes("other", "1.0"))
    outcome = reconcile(store, indexer).outcome
    assert [k for k, _ in outcome.skipped] == ["packages/README.txt"]
    assert sorted(k for k, _ in outcome.refused) == [
        "packages/x/broken-1.0-py3-none-any.whl",
        "packages/x/" + wheel_name("liar", "1.0"),
    ]
    assert RootListing.from_json_bytes(store.get("simple/index.json")[1]).projects == {}


def test_concurrent_landings_lose_nothing(store: LocalStore) -> None:
    keys = [_drop(store, "busy", "busy", f"2.{i}") for i in range(50)]

    def land(key: str) -> None:
        Indexer(store).apply([Landed(key)])

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(land, keys))
    page = ProjectPage.from_json_bytes(store.get("simple/busy/index.json")[1])
    assert {f.key for f in page.files} == set(keys)
    html = store.get("simple/busy/index.html")[1].decode()
    assert all(f">{wheel_name('busy', f'2.{i}')}</a>" in html for i in range(50))


class CountingStore(LocalStore):
    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.calls: list[str] = []

    def list(self, prefix: str):  # type: ignore[no-untyped-def]
        self.calls.append(f"list {prefix}")
        return super().list(prefix)

    def get(self, key: str):  # type: ignore[no-untyped-def]
        self.calls.append(f"get {key}")
        return super().get(key)

    def put(self, key: str, body, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(f"put {key}")
        return super().put(key, body, **kwargs)


def test_indexing_one_file_never_lists_and_touches_root_only_on_first_file(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "packages")
    indexer = Indexer(store)
    for i in range(30):
        indexer.apply([Landed(_drop(store, f"proj{i}", f"proj{i}", "1.0"))])
    store.calls.clear()
    indexer.apply([Landed(_drop(store, "proj3", "proj3", "2.0"))])
    assert not any(c.startswith("list") for c in store.calls)
    assert "get simple/proj3/index.json" in store.calls
    assert not [c for c in store.calls if c.endswith(" simple/index.json")]  # root untouched
    store.calls.clear()
    indexer.apply([Landed(_drop(store, "brand-new", "brand-new", "1.0"))])
    assert not any(c.startswith("list") for c in store.calls)
    assert "put simple/index.json" in store.calls  # a new project: root updated


def test_the_newest_release_is_worked_out_once_per_upload_and_drop_in(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan works out which release a page describes, and the page writer and the page
    for people ask the very page it made: once per file indexed, a lost race aside."""
    from functools import cached_property

    from skypi.api.publish import Uploader
    from skypi.core.upload import validate_filename, validate_form
    from tests.dists import upload_form

    worked_out: list[str] = []
    newest = ProjectPage.__dict__["latest_version"].func

    def counted(page: ProjectPage) -> str | None:
        worked_out.append(page.name)
        return newest(page)  # type: ignore[no-any-return]

    latest = cached_property(counted)
    latest.__set_name__(ProjectPage, "latest_version")
    monkeypatch.setattr(ProjectPage, "latest_version", latest)
    indexer = Indexer(store)
    key = _drop(store, "demo", "Demo", "1.0")
    indexer.apply([Landed(key)])
    assert worked_out == ["demo"]
    data, filename = wheel_bytes("Demo", "2.0"), wheel_name("Demo", "2.0")
    form = validate_form({k: [v] for k, v in upload_form(data, filename, "Demo", "2.0").items()})
    Uploader(store, indexer, max_size=1 << 20).publish(
        form, validate_filename(form, filename), io.BytesIO(data)
    )
    assert worked_out == ["demo", "demo"]
    assert indexer.pages.read("demo").page.summary  # type: ignore[union-attr]
