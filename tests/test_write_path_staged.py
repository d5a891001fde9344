"""Races staged step by step, on a folder and on S3 (moto): one writer is paused at a chosen
point (by hooking the store or the indexer), another runs to the end meanwhile, then the first
goes on. Each interleaving is the same on every run, so each rule below is held by a
deterministic test, not only by the racing stress tests:

- a file deleted while a slower writer lists it is not left listed (invariant 10);
- a delete racing a re-upload of the same filename removes only what it checked: the new
  file stays listed, with its ``.metadata``;
- of two deletes of one file, one deletes it and the other is told it was deleted already;
- a page swap that lost retries on the newer page (compare-and-swap, invariant 3);
- of two uploads of one filename with other bytes, the create-only write lets one win and
  refuses the other, which leaves nothing behind (invariant 2);
- an upload of a file listed already, while the writer that listed it is still writing what
  follows its page, is answered only once every form of the page lists the file.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from skypi.api.publish import Uploader
from skypi.core.digests import sha256_hex
from skypi.core.errors import DoesNotExist, UploadRejected
from skypi.core.keys import gzip_key, html_twins, page_html_key, page_json_key
from skypi.core.pages import ProjectPage, metadata_key
from skypi.indexer.admin import Admin
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer, Landed
from skypi.store.base import Body, ObjectInfo, Store
from tests.dists import wheel_bytes, wheel_name
from tests.stores import Interposed, folder_or_bucket
from tests.test_write_path_stress import _publish

Step = Callable[[], object]


class Hooked(Interposed):
    """A store that runs ``step`` once, just before the first call of ``method`` whose key
    passes ``when``: the other writer's turn, at exactly that point of this one."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.hooks: list[tuple[str, Callable[..., bool], Step]] = []
        self.fired: list[str] = []

    def pause(self, method: str, when: Callable[..., bool], step: Step) -> None:
        self.hooks.append((method, when, step))

    def before(self, method: str, *args: Any, **kwargs: Any) -> None:
        for hook in list(self.hooks):
            name, when, step = hook
            if name == method and when(*args, **kwargs):
                self.hooks.remove(hook)
                self.fired.append(method)
                step()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return folder_or_bucket(request, tmp_path)


def _page(store: Store, project: str) -> ProjectPage:
    return ProjectPage.from_json_bytes(store.get(f"simple/{project}/index.json")[1])


def _key(project: str, version: str) -> str:
    return f"packages/{project}/{wheel_name(project, version)}"


def _consistent(store: Store) -> None:
    assert Rebuilder(Indexer(store), workers=1).run(check=True).drift == []


def test_a_file_deleted_while_a_slower_writer_lists_it_is_not_left_listed(store: Store) -> None:
    """The slow writer has looked at the file (it is there) and is about to swap the page;
    meanwhile another writer lists it and an admin deletes it. The slow swap must not bring
    back an entry for bytes that are gone."""
    key = _key("hot", "1.0")
    store.put(key, wheel_bytes("hot", "1.0"))
    hooked = Hooked(store)

    def listed_then_deleted() -> None:
        Indexer(store).apply([Landed(key)])
        Admin(Indexer(store)).delete("hot", wheel_name("hot", "1.0"))

    # the slow writer's last step before its swap: the file's .metadata
    hooked.pause("put", lambda k, **_: k == metadata_key(key), listed_then_deleted)
    Indexer(hooked).apply([Landed(key)])  # type: ignore[arg-type]
    assert hooked.fired == ["put"]
    assert store.head(key) is None
    assert _page(store, "hot").files == ()
    assert store.head(metadata_key(key)) is None
    _consistent(store)


def test_a_delete_racing_a_reupload_keeps_the_new_file_and_its_metadata(store: Store) -> None:
    """An admin deletes a file; once the page no longer lists it, a new file of the same name
    (other bytes, the same core metadata) is uploaded and listed, before the delete removes
    the old ``.metadata``. The delete removes only what it checked: the new file stays
    listed, with its ``.metadata`` (pip reads it before it downloads)."""
    uploader = Uploader(store, Indexer(store), max_size=10 * 1024 * 1024)
    _publish(uploader, "twice", "1.0", payload=b"first")
    key = _key("twice", "1.0")
    hooked = Hooked(store)
    hooked.pause(
        "delete",
        lambda k, **_: k == metadata_key(key),
        lambda: _publish(uploader, "twice", "1.0", payload=b"second"),
    )
    Admin(Indexer(hooked)).delete("twice", wheel_name("twice", "1.0"))  # type: ignore[arg-type]
    assert not hooked.hooks, "the staged step did not run"
    stored = store.get(key)[1]
    assert stored == wheel_bytes("twice", "1.0", payload=b"second")
    [entry] = _page(store, "twice").files
    assert entry.sha256 == sha256_hex(stored)
    assert entry.metadata_sha256 == sha256_hex(store.get(metadata_key(key))[1])
    _consistent(store)


def test_of_two_deletes_of_one_file_one_deletes_it_and_the_other_is_told(store: Store) -> None:
    """Both deletes read the page (the file is listed); one runs to the end first. The other
    finds the file gone: it answers "deleted already" (404), not a second success."""
    store.put(_key("once", "1.0"), wheel_bytes("once", "1.0"))
    Indexer(store).apply([Landed(_key("once", "1.0"))])
    hooked = Hooked(store)
    filename = wheel_name("once", "1.0")
    first: list[object] = []
    hooked.pause(
        "delete",
        lambda k, **_: k == _key("once", "1.0"),
        lambda: first.append(Admin(Indexer(store)).delete("once", filename)),
    )
    with pytest.raises(DoesNotExist, match="deleted already"):
        Admin(Indexer(hooked)).delete("once", filename)  # type: ignore[arg-type]
    assert len(first) == 1
    assert store.head(_key("once", "1.0")) is None
    assert _page(store, "once").files == ()
    _consistent(store)


def test_a_page_swap_that_lost_retries_on_the_newer_page(store: Store) -> None:
    """Writer A has read the page and is about to swap it; writer B swaps first. A's swap is
    refused (its ETag is old), so A reads the page again and applies its change to it: both
    files are listed, and A's change ran twice."""
    a, b = _key("pair", "1.0"), _key("pair", "2.0")
    store.put(a, wheel_bytes("pair", "1.0"))
    store.put(b, wheel_bytes("pair", "2.0"))
    store.put(_key("pair", "0.1"), wheel_bytes("pair", "0.1"))
    Indexer(store).apply([Landed(_key("pair", "0.1"))])
    hooked = Hooked(store)
    page_key = "simple/pair/index.json"
    hooked.pause(
        "put",
        lambda k, **kw: k == page_key and kw.get("if_match"),
        lambda: Indexer(store).apply([Landed(b)]),
    )
    swaps: list[str | None] = []
    original = hooked.put

    def counting(key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        if key == page_key:
            swaps.append(kwargs.get("if_match"))
        return original(key, body, **kwargs)

    hooked.put = counting  # type: ignore[method-assign]
    Indexer(hooked).apply([Landed(a)])  # type: ignore[arg-type]
    assert len(swaps) == 2, "the lost swap was not retried"
    assert swaps[0] != swaps[1]
    assert {f.version for f in _page(store, "pair").files} == {"0.1", "1.0", "2.0"}
    _consistent(store)


def test_of_two_uploads_of_one_filename_the_create_only_write_refuses_the_second(
    store: Store,
) -> None:
    """Both uploads pass the page's check (the name is free); B stores its file first. A's
    create-only write is refused: A answers "File already exists" and leaves nothing, and
    B's bytes are the ones stored and listed."""
    uploader = Uploader(store, Indexer(store), max_size=10 * 1024 * 1024)
    key = _key("race", "1.0")
    hooked = Hooked(store)
    hooked.pause(
        "put",
        lambda k, **kw: k == key and kw.get("if_none_match"),
        lambda: _publish(uploader, "race", "1.0", payload=b"B"),
    )
    slow = Uploader(hooked, Indexer(hooked), max_size=10 * 1024 * 1024)  # type: ignore[arg-type]
    with pytest.raises(UploadRejected, match="File already exists"):
        _publish(slow, "race", "1.0", payload=b"A")
    assert hooked.fired == ["put"]
    stored = store.get(key)[1]
    assert stored == wheel_bytes("race", "1.0", payload=b"B")
    [entry] = _page(store, "race").files
    assert entry.sha256 == sha256_hex(stored)
    _consistent(store)


def test_a_reupload_while_another_writer_follows_its_page_waits_for_every_form(
    store: Store,
) -> None:
    """A file is stored and its storage event's writer has swapped the page and written the
    HTML twins, not yet the JSON page's gzip variant, when the same bytes are uploaded again
    (twine retrying): the upload is answered only once every form of the page lists the
    file, not while the other writer is part-way."""
    uploader = Uploader(store, Indexer(store), max_size=10 * 1024 * 1024)
    _publish(uploader, "again", "1.0")
    key = _key("again", "2.0")
    store.put(key, wheel_bytes("again", "2.0"))
    forms = [page_json_key("again"), *html_twins(page_html_key("again"))]
    listing: list[dict[str, bool]] = []

    def reupload() -> None:
        _publish(uploader, "again", "2.0")
        found = {k: store.get(k)[1] for k in forms}
        found |= {gzip_key(k): gzip.decompress(store.get(gzip_key(k))[1]) for k in forms}
        listing.append({k: b"again-2.0" in body for k, body in found.items()})

    hooked = Hooked(store)
    hooked.pause("put", lambda k, **_: k == gzip_key(page_json_key("again")), reupload)
    Indexer(hooked).apply([Landed(key)])  # type: ignore[arg-type]
    assert hooked.fired == ["put"]
    assert listing == [dict.fromkeys(listing[0], True)]
    assert len(listing[0]) == 6
    _consistent(store)
