"""The one admission rule, as a table: every way a file can arrive, and the one answer each."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from skypi.core.admission import ONE_SDIST, Candidate, Mode, Verdict, decide, has_sdist
from skypi.core.pages import FileEntry, ProjectPage

NOW = datetime(2026, 1, 1, tzinfo=UTC)
WHEEL = "demo-1.0-py3-none-any.whl"
SDIST = "demo-1.0.tar.gz"


def _entry(filename: str, sha: str = "aa" * 32, key: str | None = None) -> FileEntry:
    return FileEntry(filename, key or f"packages/demo/{filename}", "1.0", sha, 10, NOW)


def _page(*files: FileEntry, status: str = "active") -> ProjectPage:
    page = ProjectPage.empty("demo").with_files(files)
    return page.with_status(status, "moved") if status != "active" else page


def _wheel(sha: str = "aa" * 32, key: str = f"packages/demo/{WHEEL}") -> Candidate:
    return Candidate(WHEEL, key, "1.0", "wheel", sha)


def _sdist(filename: str = SDIST) -> Candidate:
    return Candidate(filename, f"packages/demo/{filename}", "1.0", "sdist", "bb" * 32)


def _sdist_of(version: str, ext: str = ".tar.gz") -> Candidate:
    filename = f"demo-{version}{ext}"
    return Candidate(filename, f"packages/demo/{filename}", version, "sdist", "bb" * 32)


@pytest.mark.parametrize(
    ("page", "candidate", "upload", "verdict"),
    [
        (None, _wheel(), True, Verdict.ADMIT),
        (_page(), _wheel(), True, Verdict.ADMIT),
        (_page(_entry(WHEEL)), _wheel(), True, Verdict.IDENTICAL),
        (_page(_entry(WHEEL)), _wheel("cc" * 32), True, Verdict.CONFLICT),
        # the same bytes listed from another key: an upload of them is a re-run...
        (_page(_entry(WHEEL, key=f"packages/{WHEEL}")), _wheel(), True, Verdict.IDENTICAL),
        # ...a second copy dropped into storage is not listed twice, and is no conflict...
        (_page(_entry(WHEEL, key=f"packages/{WHEEL}")), _wheel(), False, Verdict.DUPLICATE),
        # ...while other bytes under that name, dropped under another key, are
        (
            _page(_entry(WHEEL, key=f"packages/{WHEEL}")),
            _wheel("cc" * 32),
            False,
            Verdict.CONFLICT,
        ),
        # the same key listed meanwhile by another writer (a watcher, a storage event): the
        # same bytes are that listing, other bytes are an overwrite in place, refused
        (_page(_entry(WHEEL)), _wheel(), False, Verdict.IDENTICAL),
        (_page(_entry(WHEEL)), _wheel("cc" * 32), False, Verdict.CONFLICT),
        (_page(_entry(SDIST)), _sdist("demo-1.0.zip"), True, Verdict.ONE_SDIST),
        # an old folder with a .tar.gz and a .zip of one release keeps both
        (_page(_entry(SDIST)), _sdist("demo-1.0.zip"), False, Verdict.ADMIT),
        (_page(_entry(SDIST)), _wheel(), True, Verdict.ADMIT),
        # one release, spelled otherwise: PEP 440 compares versions, not their text
        (_page(_entry(SDIST)), _sdist_of("1.0.0"), True, Verdict.ONE_SDIST),
        (_page(_entry(SDIST)), _sdist_of("1.0.0.0", ".zip"), True, Verdict.ONE_SDIST),
        (_page(_entry(SDIST)), _sdist_of("1!0.0"), True, Verdict.ADMIT),  # another epoch
        (_page(_entry(SDIST)), _sdist_of("1.0.post0"), True, Verdict.ADMIT),
        (_page(_entry(SDIST)), _sdist_of("1.0.0"), False, Verdict.ADMIT),
        (_page(status="archived"), _wheel(), True, Verdict.CLOSED),
        (_page(_entry(WHEEL), status="quarantined"), _wheel(), True, Verdict.CLOSED),
        (_page(status="archived"), _wheel(), False, Verdict.ADMIT),
        (_page(status="deprecated"), _wheel(), True, Verdict.ADMIT),
    ],
)
def test_each_arrival_has_one_answer(
    page: ProjectPage | None, candidate: Candidate, upload: bool, verdict: Verdict
) -> None:
    decision = decide(page, candidate, mode=Mode.UPLOAD if upload else Mode.DROP_IN)
    assert decision.verdict is verdict
    assert decision.refused == (verdict not in {Verdict.ADMIT, Verdict.IDENTICAL})
    assert bool(decision.message) == decision.refused


def test_the_messages_are_the_ones_clients_look_for() -> None:
    conflict = decide(_page(_entry(WHEEL)), _wheel("cc" * 32))
    assert conflict.message.startswith(f"File already exists ({WHEEL!r}, with sha256 hash")
    assert "upload a new version instead" in conflict.message
    assert str(conflict.error()) == conflict.message
    assert decide(_page(_entry(SDIST)), _sdist("demo-1.0.zip")).message == ONE_SDIST
    closed = decide(_page(status="archived"), _wheel())
    assert "is archived: moved" in closed.message
    assert "skypi status demo active" in closed.message


def test_the_page_and_the_admission_rule_agree_on_one_sdist_per_release() -> None:
    page = _page(_entry(SDIST))
    for version in ("1.0", "1.0.0", "1.00", "v1.0", "1.0.0.0"):
        assert has_sdist(page.files, version), version
    for version in ("1.0.1", "1.0.post1", "1.0a1", "2!1.0", "not a version"):
        assert not has_sdist(page.files, version), version
