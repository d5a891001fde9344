"""The write path's one decision, as tables: a page and what was observed in, a plan out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from skypi.core.admission import Mode, Verdict
from skypi.core.pages import FileEntry, ProjectPage, ProjectStatus, RootEntry
from skypi.core.plan import (
    Arrival,
    Mark,
    Observed,
    Seen,
    SetStatus,
    plan,
    restated,
    seen_again,
    take_over,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 2, 1, tzinfo=UTC)


def _entry(filename: str, version: str = "1.0", sha: str = "aa", **kw: object) -> FileEntry:
    key = str(kw.pop("key", f"packages/demo/{filename}"))
    fields = {"etag": '"e1"', **kw}
    return FileEntry(filename, key, version, sha * 32, 10, NOW, **fields)  # type: ignore[arg-type]


def _wheel(version: str = "1.0", sha: str = "aa", **kw: object) -> FileEntry:
    return _entry(f"demo-{version}-py3-none-any.whl", version, sha, **kw)


def _sdist(version: str = "1.0", sha: str = "bb", **kw: object) -> FileEntry:
    return _entry(f"demo-{version}.tar.gz", version, sha, **kw)


def _page(*files: FileEntry, status: str = "active") -> ProjectPage:
    page = ProjectPage.empty("Demo").with_files(files)
    return page.with_status(status, "moved") if status != "active" else page


def _arrive(entry: FileEntry, *, upload: bool = False) -> Arrival:
    mode = Mode.UPLOAD if upload else Mode.DROP_IN
    if entry.filename.endswith(".whl"):
        return Arrival(entry, "wheel", "Demo", mode)
    return Arrival(entry, "sdist", "Demo", mode)


@pytest.mark.parametrize(
    ("page", "arrivals", "verdicts", "listed"),
    [
        # a first file makes the page
        (None, [_arrive(_wheel())], [Verdict.ADMIT], ["demo-1.0-py3-none-any.whl"]),
        # an upload of the listed bytes is a re-run: nothing to write
        (_page(_wheel()), [_arrive(_wheel(), upload=True)], [Verdict.IDENTICAL], None),
        # other bytes under a listed name, dropped under another key: a conflict
        (
            _page(_wheel()),
            [_arrive(_wheel(sha="cc", key="packages/demo/old/demo-1.0-py3-none-any.whl"))],
            [Verdict.CONFLICT],
            None,
        ),
        # the listed bytes, dropped under another key: listed once, from the first
        (
            _page(_wheel()),
            [_arrive(_wheel(key="packages/demo/copy/demo-1.0-py3-none-any.whl"))],
            [Verdict.DUPLICATE],
            None,
        ),
        # one sdist per release, compared as versions (1.0.0 is 1.0): for uploads only
        (_page(_sdist()), [_arrive(_sdist("1.0.0"), upload=True)], [Verdict.ONE_SDIST], None),
        (
            _page(_sdist()),
            [_arrive(_sdist("1.0.0"))],
            [Verdict.ADMIT],
            ["demo-1.0.0.tar.gz", "demo-1.0.tar.gz"],  # equal versions: by filename
        ),
        # a closed project refuses uploads, not files dropped into its storage
        (_page(status="archived"), [_arrive(_wheel(), upload=True)], [Verdict.CLOSED], None),
        (
            _page(status="archived"),
            [_arrive(_wheel())],
            [Verdict.ADMIT],
            ["demo-1.0-py3-none-any.whl"],
        ),
        # two arrivals of one name in a batch: decided like two writers, the first listed
        (
            None,
            [
                _arrive(_wheel(key="packages/demo/a/demo-1.0-py3-none-any.whl")),
                _arrive(_wheel(sha="cc", key="packages/demo/b/demo-1.0-py3-none-any.whl")),
            ],
            [Verdict.ADMIT, Verdict.CONFLICT],
            ["demo-1.0-py3-none-any.whl"],
        ),
    ],
)
def test_each_arrival_is_decided_once(
    page: ProjectPage | None,
    arrivals: list[Arrival],
    verdicts: list[Verdict],
    listed: list[str] | None,
) -> None:
    done = plan(page, Observed(arrivals=tuple(arrivals)))
    assert [done.decision(a.entry.key).verdict for a in arrivals] == verdicts
    if listed is None:
        assert done.page is None
        return
    assert done.page is not None
    assert [f.filename for f in done.page.files] == listed
    assert done.page.serial == (page.serial if page else 0) + 1
    assert done.root == RootEntry("Demo", done.page.summary)


def test_a_departure_removes_only_the_entry_that_was_checked() -> None:
    page = _page(_wheel(), _sdist())
    gone = plan(page, Observed(departures={_wheel().key: '"e1"'}))
    assert gone.page is not None
    assert [f.filename for f in gone.page.files] == ["demo-1.0.tar.gz"]
    # a newer upload under the same key, listed since the look: stays
    assert plan(page, Observed(departures={_wheel().key: '"e0"'})).page is None
    assert plan(page, Observed(departures={"packages/demo/other.whl": None})).page is None


def test_the_last_file_leaving_takes_the_project_off_the_root_listing() -> None:
    done = plan(_page(_wheel()), Observed(departures={_wheel().key: None}))
    assert done.page is not None
    assert done.page.files == ()
    assert done.root == RootEntry(None, "")


def test_a_refresh_follows_a_copy_and_keeps_the_entry_otherwise() -> None:
    page = _page(_wheel(yanked="bad"))
    done = plan(page, Observed(refreshed={_wheel().key: ('"e2"', "../p")}))
    assert done.page is not None
    (entry,) = done.page.files
    assert (entry.etag, entry.provenance, entry.yanked) == ('"e2"', "../p", "bad")


def test_an_identical_arrival_brings_its_provenance_to_the_listed_entry() -> None:
    attested = _arrive(_wheel(provenance="../../integrity/p"), upload=True)
    done = plan(_page(_wheel()), Observed(arrivals=(attested,)))
    assert done.decision(attested.entry.key).verdict is Verdict.IDENTICAL
    assert done.page is not None
    assert done.page.files[0].provenance == "../../integrity/p"


def test_the_newest_release_brings_its_summary() -> None:
    second = replace(_arrive(_wheel("2.0")), summary="the second")
    done = plan(_page(_wheel()), Observed((second,)))
    assert done.page is not None
    assert done.page.summary == "the second"
    assert done.root == RootEntry("Demo", "the second")
    older = replace(_arrive(_wheel("0.9")), summary="the older")
    assert plan(done.page, Observed((older,))).page.summary == "the second"  # type: ignore[union-attr]


def test_nothing_observed_of_a_project_without_a_page_plans_nothing() -> None:
    done = plan(None, Observed(departures={_wheel().key: None}))
    assert (done.page, dict(done.decisions), done.root) == (None, {}, RootEntry(None, ""))
    assert not Observed(departures={_wheel().key: None}).changes(None)
    assert Observed(departures={_wheel().key: None}).changes(_page(_wheel()))


# -- an admin's edits (Mode.ADMIN) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("listed", "mark", "edited", "yanks"),
    [
        # one file by its name
        ([_wheel(), _sdist()], Mark("broken", filename="demo-1.0.tar.gz"), ["demo-1.0.tar.gz"],
         [None, "broken"]),
        # every file of a release, its version compared as PEP 440 does (1.0.0 is 1.0)
        ([_wheel(), _sdist(), _wheel("2.0")], Mark("", version="1.0.0"),
         ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"], ["", "", None]),
        # an unyank
        ([_wheel(yanked="bad")], Mark(None, version="1.0"), ["demo-1.0-py3-none-any.whl"],
         [None]),
        # already so, or nothing named: no page to write
        ([_wheel(yanked="bad")], Mark("bad", version="1.0"), [], None),
        ([_wheel()], Mark("bad", filename="demo-9.0.tar.gz"), [], None),
        ([_wheel()], Mark("bad", version="9.0"), [], None),
    ],
)  # fmt: skip
def test_a_mark_changes_only_the_entries_it_names(
    listed: list[FileEntry], mark: Mark, edited: list[str], yanks: list[str | None] | None
) -> None:
    page = _page(*listed)
    done = plan(page, Observed(edit=mark))
    assert list(done.edited) == edited
    assert dict(done.decisions) == {}
    if yanks is None:
        assert done.page is None
        assert done.root == RootEntry("Demo", "")
        return
    assert done.page is not None
    assert [f.yanked for f in done.page.files] == yanks
    assert done.page.serial == page.serial + 1


def test_a_status_is_written_even_when_it_is_the_same() -> None:
    page = _page(_wheel(), status="archived")
    done = plan(page, Observed(edit=SetStatus(ProjectStatus.ARCHIVED, "moved")))
    assert done.page is not None
    assert (done.page.status, done.page.status_reason) == (ProjectStatus.ARCHIVED, "moved")
    assert done.page.serial == page.serial + 1
    quarantined = plan(page, Observed(edit=SetStatus(ProjectStatus.QUARANTINED, None))).page
    assert quarantined is not None
    assert quarantined.files == page.files  # held, not dropped: lifting it lists them again
    assert quarantined.listed_files() == []


def test_an_edit_of_a_project_without_a_page_plans_nothing() -> None:
    for edit in (Mark("x", version="1.0"), SetStatus(ProjectStatus.ACTIVE, None)):
        done = plan(None, Observed(edit=edit))
        assert (done.page, done.edited, done.root) == (None, (), RootEntry(None, ""))


@pytest.mark.parametrize(
    ("etag", "sha256", "seen"),
    [
        ('"e1"', None, Seen.REPLAY),  # the version indexed: nothing happened
        ('"e2"', "aa" * 32, Seen.COPY),  # the same bytes stored again
        ('"e2"', "cc" * 32, Seen.OVERWRITE),  # other bytes in place
        ('"e2"', None, Seen.OVERWRITE),  # too big to hash in time: taken for other bytes
    ],
)
def test_a_listed_key_seen_again(etag: str, sha256: str | None, seen: Seen) -> None:
    assert seen_again(_wheel(), etag, sha256) is seen


def test_taking_over_keeps_what_only_the_page_knows_but_not_the_old_provenance() -> None:
    known = _wheel(yanked="bad", provenance="../p")
    stored = replace(_wheel(sha="cc"), upload_time=LATER, etag='"e2"')
    taken = take_over(known, stored)
    assert (taken.sha256, taken.etag) == (stored.sha256, '"e2"')
    assert (taken.yanked, taken.upload_time, taken.provenance) == ("bad", NOW, None)
    # the same bytes read again keep their provenance
    again = restated(known, replace(_wheel(), upload_time=LATER, etag='"e2"'))
    assert (again.etag, again.upload_time, again.provenance) == ('"e2"', NOW, "../p")


@pytest.mark.parametrize(
    ("listed", "arriving", "described"),
    [
        ([], ["1.0"], "1.0"),  # the first release
        ([_wheel("1.0")], ["2.0"], "2.0"),  # a newer release
        ([_wheel("2.0")], ["1.0"], None),  # an older one: the newest stays as it is
        ([_wheel("1.0")], ["1.0.0"], None),  # the listed release (1.0.0 is 1.0)
        ([_wheel("1.0")], ["2.0b1"], None),  # a pre-release does not become the newest
        ([], ["1.0", "2.0", "1.5"], "2.0"),  # the newest among those arriving
    ],
)
def test_the_release_to_describe(
    listed: list[FileEntry], arriving: list[str], described: str | None
) -> None:
    page = _page(*listed) if listed else None
    arrivals = [_arrive(_wheel(v)) for v in arriving]
    done = plan(page, Observed(tuple(arrivals)))
    first = next((a for a in arrivals if a.entry.key == done.describe), None)
    assert (first.entry.version if first else None) == described


def test_the_release_to_describe_is_one_the_plan_lists() -> None:
    """A refused file describes nothing; of two sdists of a new release, the one listed."""
    upload = _arrive(_wheel("2.0"), upload=True)
    closed = plan(_page(_wheel(), status="archived"), Observed((upload,)))
    assert (closed.page, closed.describe) == (None, None)
    first, second = _arrive(_sdist("2.0"), upload=True), _arrive(_sdist("2.0.0"), upload=True)
    done = plan(_page(_wheel()), Observed((first, second)))
    assert done.decision(second.entry.key).verdict is Verdict.ONE_SDIST
    assert done.describe == first.entry.key
