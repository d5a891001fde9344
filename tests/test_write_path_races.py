"""Attacks on the write path: writers whose root and landing updates cross, a rebuild racing an
upload, a landing page broken by hand. Each race is staged step by step (no timing), so the
outcome is the same on every run."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import NormalizedName

from skypi.api.publish import Uploader
from skypi.core.errors import DoesNotExist
from skypi.core.landing import SiteSummary, Upload
from skypi.core.pages import ProjectPage, RootListing
from skypi.core.render import render_project_html, render_root_html
from skypi.indexer.admin import Admin
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Gone, Indexer, Landed
from skypi.indexer.writer import RootChange
from skypi.local.startup import reconcile
from skypi.store.base import Body, ObjectInfo, PreconditionFailed
from skypi.store.local import LocalStore
from tests.dists import metadata_text, wheel_bytes, wheel_name
from tests.test_write_path_stress import _publish


def _drop(store: LocalStore, name: str, version: str, summary: str = "A test package") -> str:
    key = f"packages/{name}/{wheel_name(name, version)}"
    meta = metadata_text(name, version, summary=summary)
    store.put(key, wheel_bytes(name, version, metadata=meta))
    return key


def _root(store: LocalStore) -> RootListing:
    return RootListing.from_json_bytes(store.get("simple/index.json")[1])


def _page(store: LocalStore, name: str) -> ProjectPage:
    return ProjectPage.from_json_bytes(store.get(f"simple/{name}/index.json")[1])


def _landing(store: LocalStore) -> SiteSummary:
    summary = SiteSummary.from_landing(store.get("site/index.html")[1])
    assert summary is not None
    return summary


class _Late(Indexer):
    """An indexer whose batch ends (root listing, landing page) only when told: a slow
    process, paused between its page write and its root update."""

    pending: list[
        tuple[
            RootChange,
            list[Upload],
            Mapping[NormalizedName, str] | None,
            Sequence[tuple[NormalizedName, str]],
        ]
    ]

    def finish(
        self,
        root: RootChange,
        uploads: list[Upload],
        seen: Mapping[NormalizedName, str] | None = None,
        *,
        gone: Sequence[tuple[NormalizedName, str]] = (),
        settle: bool = False,
    ) -> None:
        self.pending = [*getattr(self, "pending", []), (root, uploads, seen, gone)]

    def resume(self) -> None:
        for root, uploads, seen, gone in self.pending:
            Indexer.finish(self, root, uploads, seen, gone=gone)
        self.pending = []


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_root_listing_keeps_a_project_whose_last_file_left_and_another_arrived(
    tmp_path: Path, warm: bool
) -> None:
    """A deletes the last file (page: empty), B uploads one (page: listed); B's root update
    lands first, then A's: the root listing must still show the project its page lists
    (``warm``: A keeps the listing it wrote last, so it swaps without reading first)."""
    store = LocalStore(tmp_path / "packages")
    first = _drop(store, "flip", "1.0")
    slow, fast = _Late(store), Indexer(store)
    if warm:
        slow.apply([Landed(first)])
        slow.resume()
    else:
        Indexer(store).apply([Landed(first)])
    store.delete(first)
    slow.apply([Gone(first)])  # page written (no files), root update pending
    fast.apply([Landed(_drop(store, "flip", "2.0"))])  # page lists 2.0, root shows it
    slow.resume()  # the slower writer's root update comes last
    assert [f.version for f in _page(store, "flip").files] == ["2.0"]
    assert "flip" in _root(store).projects
    assert _landing(store).projects == len(_root(store).projects)
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_root_listing_shows_the_summary_of_the_newest_page(tmp_path: Path) -> None:
    """Two uploads of newer versions with new summaries; the older one's root update lands
    last: the listing must not go back to the older summary."""
    store = LocalStore(tmp_path / "packages")
    Indexer(store).apply([Landed(_drop(store, "sum", "1.0", "one"))])
    slow, fast = _Late(store), Indexer(store)
    slow.apply([Landed(_drop(store, "sum", "2.0", "two"))])
    fast.apply([Landed(_drop(store, "sum", "3.0", "three"))])
    slow.resume()
    assert _page(store, "sum").summary == "three"
    assert _root(store).summaries[NormalizedName("sum")] == "three"
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_a_rebuild_keeps_a_project_that_arrives_while_it_runs(tmp_path: Path) -> None:
    """The rebuild lists storage, then a new project is uploaded and listed, then the rebuild
    fixes the root listing: the new project must stay listed."""
    store = LocalStore(tmp_path / "packages")
    Indexer(store).apply([Landed(_drop(store, "old", "1.0"))])
    store.delete("simple/index.html")  # some drift, so the rebuild writes the root listing
    rebuilder = Rebuilder(Indexer(store), workers=1)
    planned = rebuilder._root

    def upload_then_fix(shown, check, **kwargs):  # type: ignore[no-untyped-def]
        Indexer(store).apply([Landed(_drop(store, "newcomer", "1.0"))], isolate=False)
        return planned(shown, check, **kwargs)

    rebuilder._root = upload_then_fix  # type: ignore[method-assign]
    rebuilder.run(check=False)
    assert sorted(_root(store).projects) == ["newcomer", "old"]
    assert _landing(store).projects == 2
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_a_landing_page_broken_by_hand_is_reported_and_repaired(tmp_path: Path) -> None:
    """A landing page without its manifest (edited by hand, truncated): the next upload must
    not make it say "0 projects" unnoticed; the check reports it and a rebuild repairs it."""
    store = LocalStore(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "a", "1.0")), Landed(_drop(store, "b", "1.0"))])
    store.put("site/index.html", b"<!DOCTYPE html><p>edited by hand</p>")
    Indexer(store).apply([Landed(_drop(store, "a", "2.0"))])  # no root change
    report = Rebuilder(Indexer(store)).run(check=True)
    assert _landing(store).projects == 2 or report.drift, "a wrong count goes unreported"
    Rebuilder(Indexer(store)).run(check=False)
    assert _landing(store).projects == 2
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_a_root_listing_rebuilt_from_scratch_still_moves_the_landing_count(
    tmp_path: Path,
) -> None:
    """An unreadable root listing is written again from serial 1; the landing page's count,
    taken from a root listing of a higher serial, must still follow it."""
    store = LocalStore(tmp_path / "packages")
    indexer = Indexer(store)
    for i in range(5):
        indexer.apply([Landed(_drop(store, f"p{i}", "1.0"))])
    store.put("simple/index.json", b"{not json")
    Rebuilder(Indexer(store)).run(check=False)
    assert len(_root(store).projects) == 5
    Indexer(store).apply([Landed(_drop(store, "p5", "1.0"))])
    assert len(_root(store).projects) == 6
    assert _landing(store).projects == 6
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_a_page_of_thousands_of_files_with_a_version_that_is_none_still_takes_uploads(
    tmp_path: Path,
) -> None:
    """A stored page edited by hand: 3,000 files, one of them at a version that is no version.
    An upload to it is listed, and a rebuild reads it (both raised TypeError, sorting)."""
    store = LocalStore(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "odd", "1.0"))])
    stored = _page(store, "odd")
    entry = stored.files[0]
    many = [
        replace(entry, filename=f"odd-{i}.0-py3-none-any.whl", version=f"{i}.0")
        for i in range(2, 3001)
    ]
    odd = replace(entry, filename="odd-junk-py3-none-any.whl", version="junk!")
    store.put(
        "simple/odd/index.json", stored.with_files((*stored.files, *many, odd)).to_json_bytes()
    )
    outcome = Indexer(store).apply([Landed(_drop(store, "odd", "5000.0"))])
    assert outcome.added == [wheel_name("odd", "5000.0")]
    page = _page(store, "odd")
    assert len(page.files) == 3002
    assert page.sorted_files()[0].version == "junk!"
    assert store.get("simple/odd/index.html")[1] == render_project_html(page)
    report = Rebuilder(Indexer(store)).run(check=True)
    assert any("listed but not stored" in d.problem for d in report.drift)


class _Storm(LocalStore):
    """A store whose conditional writes fail: the first ``lose`` of them lose a race that
    never was (412 and nothing written), and those named in ``lost_replies`` are written but
    answered 412 (S3 stored it, the reply was lost, botocore sent it again and got 412)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.lose = 0
        self.lost_replies: set[str] = set()

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        conditional = kwargs.get("if_match") is not None or kwargs.get("if_none_match")
        if conditional and self.lose > 0:
            self.lose -= 1
            raise PreconditionFailed(key)
        info = super().put(key, body, **kwargs)
        if conditional and key in self.lost_replies:
            self.lost_replies.discard(key)
            raise PreconditionFailed(key)
        return info


def test_a_storm_of_lost_races_ends_consistent(tmp_path: Path) -> None:
    store = _Storm(tmp_path / "packages")
    store.lose = 40  # on the pages, the root listing, the landing page, in turn
    Indexer(store).apply([Landed(_drop(store, f"storm-{i}", "1.0")) for i in range(3)])
    assert sorted(_root(store).projects) == ["storm-0", "storm-1", "storm-2"]
    assert _landing(store).projects == 3
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_a_first_page_written_but_answered_412_still_lists_its_project(tmp_path: Path) -> None:
    """The new project's first page write succeeds but its reply is lost (the retry gets
    412): the writer finds its own file listed, and must still list the project."""
    store = _Storm(tmp_path / "packages")
    store.lost_replies = {"simple/lost/index.json"}
    outcome = Indexer(store).apply([Landed(_drop(store, "lost", "1.0"))])
    assert not outcome.conflicts
    assert not outcome.refused
    assert [f.version for f in _page(store, "lost").files] == ["1.0"]
    assert "lost" in _root(store).projects
    assert _landing(store).projects == 1
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


@pytest.mark.parametrize("key", ["simple/index.json", "site/index.html"])
def test_a_root_or_landing_write_answered_412_still_ends_consistent(
    tmp_path: Path, key: str
) -> None:
    """The root listing's (or the landing page's) swap is stored but answered 412: the
    writer reads it back, finds nothing left to change, and must still write what follows
    it (and not count the upload twice)."""
    store = _Storm(tmp_path / "packages")
    Indexer(store).apply([Landed(_drop(store, "first", "1.0"))])
    store.lost_replies = {key}
    Indexer(store).apply([Landed(_drop(store, "second", "1.0"))])
    assert sorted(_root(store).projects) == ["first", "second"]
    landing = _landing(store)
    assert landing.projects == 2
    assert [u.filename for u in landing.recent].count(wheel_name("second", "1.0")) == 1
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_the_landing_page_of_an_older_version_is_no_drift(tmp_path: Path) -> None:
    """Older versions kept the landing page's manifest beside it (site/index.json): a check
    of an index they wrote finds nothing wrong with it."""
    store = LocalStore(tmp_path / "packages")
    Indexer(store).apply([Landed(_drop(store, "a", "1.0"))])
    store.put("site/index.json", _landing(store).to_json_bytes())
    store.put("site/index.html", b"<!DOCTYPE html><p>an older landing page</p>")
    assert Rebuilder(Indexer(store)).run(check=True).drift == []
    store.put("site/index.json", b"{broken")
    assert [d.problem for d in Rebuilder(Indexer(store)).run(check=True).drift] == [
        "site/index.html carries no manifest"
    ]


@pytest.mark.parametrize("action", ["yank", "status", "delete"])
def test_an_admin_page_write_answered_412_still_writes_what_follows(
    tmp_path: Path, action: str
) -> None:
    """An admin action's page swap is stored but answered 412 (S3 stored it, the reply was
    lost, botocore sent it again): the writer reads the page back and finds nothing left to
    change. No storage event follows a yank or a status, and a delete's event finds its file
    unlisted already, so what follows the page (HTML twins, gzip variants) is still this
    writer's to write."""
    store = _Storm(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "lost", "1.0")), Landed(_drop(store, "lost", "2.0"))])
    store.lost_replies = {"simple/lost/index.json"}
    admin = Admin(indexer)
    if action == "yank":
        assert admin.yank("lost", version="2.0", reason="broken") == [wheel_name("lost", "2.0")]
    elif action == "status":
        assert admin.set_status("lost", "archived").status == "archived"
    else:
        admin.delete("lost", wheel_name("lost", "2.0"))
        indexer.apply([Gone(f"packages/lost/{wheel_name('lost', '2.0')}")])  # its event
    assert not store.lost_replies  # the lost reply was met
    page = _page(store, "lost")
    assert store.get("simple/lost/index.html")[1] == render_project_html(page)
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


class _Failing(LocalStore):
    """A store whose next write of a key in ``fail`` raises (a storage fault that outlasted
    the retries), writing nothing."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fail: set[str] = set()

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        if key in self.fail:
            self.fail.discard(key)
            raise OSError(f"{key}: injected")
        return super().put(key, body, **kwargs)


def test_a_yank_sent_again_after_its_followers_failed_writes_them(tmp_path: Path) -> None:
    """A yank's page is swapped, then writing its HTML fails (the admin is answered 5xx).
    No storage event follows a yank, so the admin sends it again: the page says it all
    already ("already yanked"), and what follows the page is written then."""
    store = _Failing(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "torn", "1.0"))])
    store.fail = {"simple/torn/index.html"}
    with pytest.raises(OSError, match="injected"):
        Admin(indexer).yank("torn", version="1.0", reason="broken")
    assert _page(store, "torn").files[0].yanked == "broken"
    with pytest.raises(DoesNotExist):
        Admin(indexer).yank("torn", version="1.0", reason="broken")
    page = _page(store, "torn")
    assert store.get("simple/torn/index.html")[1] == render_project_html(page)
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


@pytest.mark.parametrize("writer", ["admin", "event"])
def test_a_delete_whose_followers_failed_is_finished_by_its_event(
    tmp_path: Path, writer: str
) -> None:
    """A delete's page is swapped (the file unlisted), then writing its HTML fails: the admin
    is answered 5xx, or the indexer run that unlisted it stops there. The delete's storage
    event (or its redelivery) then finds the file unlisted already; what follows the page is
    still to write, and the event writes it, as a replayed upload's does."""
    store = _Failing(tmp_path / "packages")
    indexer = Indexer(store)
    kept, gone = _drop(store, "torn", "1.0"), _drop(store, "torn", "2.0")
    indexer.apply([Landed(kept), Landed(gone)])
    store.fail = {"simple/torn/index.html"}
    if writer == "admin":
        with pytest.raises(OSError, match="injected"):
            Admin(indexer).delete("torn", wheel_name("torn", "2.0"))
    else:
        store.delete(gone)
        with pytest.raises(OSError, match="injected"):
            indexer.apply([Gone(gone)])
    assert [f.key for f in _page(store, "torn").files] == [kept]
    assert Rebuilder(Indexer(store)).run(check=True).drift != []  # torn, as the fault left it
    Indexer(store).apply([Gone(gone)])  # the delete's event, in another process
    page = _page(store, "torn")
    assert store.get("simple/torn/index.html")[1] == render_project_html(page)
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


class _Overtaken(LocalStore):
    """A store in which another writer lists ``then`` (a second upload, indexed and followed
    in full) just before the first look at ``name``'s gzip variant; afterwards it counts the
    writes of that variant."""

    def __init__(self, root: Path, name: str, then: str) -> None:
        super().__init__(root)
        self.mark, self.then = f"simple/{name}/index.json.gz", then
        self.armed, self.marks = False, 0

    def get(self, key: str, **kwargs: Any) -> tuple[ObjectInfo, bytes]:
        if self.armed and key == self.mark:
            self.armed = False
            Indexer(LocalStore(self.packages_dir)).apply([Landed(self.then)])
        return super().get(key, **kwargs)

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        self.marks += key == self.mark
        return super().put(key, body, **kwargs)


def test_a_replay_never_writes_what_follows_a_page_that_moved_on(tmp_path: Path) -> None:
    """A replayed event (or a delete's) reads the page, then looks whether what follows it was
    written. If another writer replaced the page in between, its followers are the newer
    page's: the replay must not write the older page's over them (readers of the gzip
    variant, pip and uv, would be sent back to the older page until the look after them)."""
    store = _Overtaken(tmp_path / "packages", "moved", "")
    first = _drop(store, "moved", "1.0")
    Indexer(store).apply([Landed(first)])
    store.then, store.armed = _drop(store, "moved", "2.0"), True
    store.marks = 0
    Indexer(store).apply([Landed(first)])  # the first upload's event, delivered again
    assert store.marks == 0
    page = _page(store, "moved")
    assert len(page.files) == 2
    assert store.get("simple/moved/index.html")[1] == render_project_html(page)
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


@pytest.mark.parametrize("process", ["same", "another"])
@pytest.mark.parametrize("torn", ["simple/index.html", "simple/index.json.gz", "site/index.html"])
def test_a_batch_whose_root_or_landing_write_failed_is_finished_by_its_redelivery(
    tmp_path: Path, torn: str, process: str
) -> None:
    """A new project's page is written, the root listing swapped, then writing what follows
    the listing (or the landing page after it) fails: the batch raises, and its events come
    again. The root listing says it all already; what follows it and the landing page's count
    are still to write, and the redelivery writes them."""
    store = _Failing(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "first", "1.0"))])
    fresh = _drop(store, "fresh", "1.0")
    store.fail = {torn}
    with pytest.raises(OSError, match="injected"):
        indexer.apply([Landed(fresh)])
    assert "fresh" in _root(store).projects
    assert Rebuilder(Indexer(store)).run(check=True).drift != []  # torn, as the fault left it
    # the redelivered event, in the same process (which keeps the listing it wrote) or not
    (indexer if process == "same" else Indexer(store)).apply([Landed(fresh)])
    assert store.get("simple/index.html")[1] == render_root_html(_root(store))
    assert _landing(store).projects == 2
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


@pytest.mark.parametrize("torn", ["simple/torn/index.html", "site/project/torn/index.html"])
def test_an_upload_sent_again_after_its_followers_failed_is_answered_once_they_are_written(
    tmp_path: Path, torn: str
) -> None:
    """An upload's page is swapped (the file listed), then writing its HTML (or its page for
    people) fails: twine is answered 5xx and sends the file again. The page lists these very
    bytes already; the answer still waits until what follows the page lists them too, as
    the first upload's would have."""
    store = _Failing(tmp_path / "packages")
    indexer = Indexer(store)
    uploader = Uploader(store, indexer, max_size=10 * 1024 * 1024)
    _publish(uploader, "torn", "1.0")
    store.fail = {torn}
    with pytest.raises(OSError, match="injected"):
        _publish(uploader, "torn", "2.0")
    assert [f.version for f in _page(store, "torn").files] == ["1.0", "2.0"]
    _publish(Uploader(store, Indexer(store), max_size=10 * 1024 * 1024), "torn", "2.0")
    page = _page(store, "torn")
    assert store.get("simple/torn/index.html")[1] == render_project_html(page)
    assert b"<small>2.0</small>" in store.get("site/project/torn/index.html")[1]
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_a_start_up_stopped_after_the_root_listing_swap_still_moves_the_landing_count(
    tmp_path: Path,
) -> None:
    """``skypi serve`` starts on a project the root listing lacks (the batch that listed it
    stopped at the listing's swap). The start-up pass swaps the listing, then writing the
    landing page fails (a full disk), and the start is tried again: by then the listing says
    all it has to say, and the landing page's count must still move."""
    store = _Failing(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "first", "1.0"))])
    reconcile(store, Indexer(store))  # a clean start: what it found is recorded
    store.fail = {"simple/index.json"}
    with pytest.raises(OSError, match="injected"):
        indexer.apply([Landed(_drop(store, "second", "1.0"))])
    assert "second" not in _root(store).projects
    store.fail = {"site/index.html"}
    with pytest.raises(OSError, match="injected"):
        reconcile(store, Indexer(store))
    assert "second" in _root(store).projects
    reconcile(store, Indexer(store))  # started again
    assert _landing(store).projects == 2
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_a_root_listing_stored_by_an_older_version_is_not_taken_for_torn(tmp_path: Path) -> None:
    """A listing (and its gzip variant) stored by an older version, with each project's
    normalized name, reads as the listing it is: a redelivered event does not take it for a
    listing whose followers were cut short, and writes none of them again."""
    store = _Failing(tmp_path / "packages")
    key = _drop(store, "first", "1.0")
    Indexer(store).apply([Landed(key)])
    doc = json.loads(store.get("simple/index.json")[1])
    for project in doc["projects"]:
        project["_normalized"] = project["name"]
    earlier = json.dumps(doc).encode()
    store.put("simple/index.json", earlier)
    store.put("simple/index.json.gz", gzip.compress(earlier))
    writes: list[str] = []
    put = store.put

    def counted(key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        writes.append(key)
        return put(key, body, **kwargs)

    store.put = counted  # type: ignore[method-assign]
    Indexer(store).apply([Landed(key)])  # the event again, in a new process
    assert not [k for k in writes if k.startswith("simple/index.")]
