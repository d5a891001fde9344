"""One bad file never blocks the others. A hand-made archive that once crashed (or hung) the
reader is set aside wherever files enter the index (start-up, the folder watcher, `skypi
reindex`, `reindex --check`, `skypi import`, an upload): logged with its path and reason, listed
by `reindex --check` (not as drift: no page lists it), and the rest of the batch is indexed. A
project whose indexing fails for another reason is retried a bounded number of times, and never
stops the other projects. (The indexer Lambda and direct uploads: tests/aws.)"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skypi import cli
from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.pages import ProjectPage, RootListing
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer
from skypi.local import watch
from skypi.local.importer import Importer
from skypi.local.startup import reconcile
from skypi.local.watch import FolderWatcher
from skypi.store.base import Store
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic
from tests.dists import poisoned, upload_form, wheel_bytes, wheel_name
from tests.emulated import s3_store

CASES = sorted(poisoned("bad", "1.0"))


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "packages")
    return s3_store(request.getfixturevalue("moto_endpoint"))


def _listed(store: Store, project: str) -> set[str]:
    try:
        page = ProjectPage.from_json_bytes(store.get(f"simple/{project}/index.json")[1])
    except KeyError:
        return set()
    return {f.filename for f in page.files}


def _put_bad_and_good(store: Store, case: str) -> tuple[str, str]:
    """A poisoned file of project ``bad`` and a good one of ``good`` (key of each)."""
    filename, data = poisoned("bad", "1.0")[case]
    bad, good = f"packages/bad/{filename}", f"packages/good/{wheel_name('good', '1.0')}"
    store.put(bad, data)
    store.put(good, wheel_bytes("good", "1.0"))
    return bad, good


class Failing(Indexer):
    """An indexer whose pages for one project cannot be written (a fault, not the file's)."""

    attempts = 0

    def _apply_project(self, project, changes):  # type: ignore[no-untyped-def]
        if project == "flaky":
            type(self).attempts += 1
            raise RuntimeError("storage went away")
        return super()._apply_project(project, changes)


# -- reindex and reindex --check ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_reindex_sets_a_bad_file_aside_and_lists_it_without_calling_it_drift(
    any_store: Store, case: str
) -> None:
    bad, _ = _put_bad_and_good(any_store, case)
    check = Rebuilder(Indexer(any_store)).run(check=True)
    assert [k for k, _ in check.set_aside] == [bad]
    assert "Invalid distribution file." in check.set_aside[0][1]
    assert not any(bad in d.problem for d in check.drift)  # not drift: no page lists it
    Rebuilder(Indexer(any_store)).run(check=False)
    assert _listed(any_store, "good") == {wheel_name("good", "1.0")}
    again = Rebuilder(Indexer(any_store)).run(check=True)
    assert again.drift == []
    assert [k for k, _ in again.set_aside] == [bad]


def test_the_cli_lists_what_is_set_aside_by_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "packages"
    store = LocalStore(folder)
    _put_bad_and_good(store, "encrypted wheel")
    assert cli.main(["reindex", str(folder)]) == 0
    assert cli.main(["reindex", str(folder), "--check"]) == 0  # set aside is not drift
    out, err = capsys.readouterr()
    path = folder.resolve() / "bad" / wheel_name("bad", "1.0")
    assert f"set aside: {path}: Invalid distribution file." in out
    assert "no drift, 1 set aside (not indexed)" in err


def test_a_project_that_cannot_be_checked_does_not_stop_reindex(any_store: Store) -> None:
    any_store.put(f"packages/flaky/{wheel_name('flaky', '1.0')}", wheel_bytes("flaky", "1.0"))
    Indexer(any_store).apply([])  # the root listing exists
    from skypi.indexer.service import Landed

    Indexer(any_store).apply([Landed(f"packages/flaky/{wheel_name('flaky', '1.0')}")])
    any_store.put(f"packages/good/{wheel_name('good', '1.0')}", wheel_bytes("good", "1.0"))

    class Broken(Rebuilder):
        def _project(self, project, infos, check):  # type: ignore[no-untyped-def]
            if project == "flaky":
                raise RuntimeError("storage went away")
            return super()._project(project, infos, check)

    report = Broken(Indexer(any_store)).run(check=False)
    assert report.failed == [("flaky", "RuntimeError: storage went away")]
    assert _listed(any_store, "good") == {wheel_name("good", "1.0")}
    root = RootListing.from_json_bytes(any_store.get("simple/index.json")[1])
    assert set(root.projects) == {"flaky", "good"}  # flaky is kept as it was


# -- start-up ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_start_up_sets_a_bad_file_aside_logs_it_once_and_indexes_the_rest(
    tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "packages")
    bad, _ = _put_bad_and_good(store, case)
    with caplog.at_level(logging.WARNING):
        report = reconcile(store, Indexer(store))
        reconcile(store, Indexer(store))  # a restart: nothing changed, nothing said again
    assert [k for k, _ in report.outcome.refused] == [bad]
    assert _listed(store, "good") == {wheel_name("good", "1.0")}
    said = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(said) == 1
    assert said[0].startswith(f"set aside {store.path_for(bad)} (not indexed): Invalid")


def test_start_up_goes_on_when_a_project_fails_and_looks_at_it_again_next_time(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "packages")
    store.put(f"packages/flaky/{wheel_name('flaky', '1.0')}", wheel_bytes("flaky", "1.0"))
    store.put(f"packages/good/{wheel_name('good', '1.0')}", wheel_bytes("good", "1.0"))
    Failing.attempts = 0
    with pytest.raises(RuntimeError, match="storage went away"):  # the start is incomplete
        reconcile(store, Failing(store))
    assert _listed(store, "good") == {wheel_name("good", "1.0")}  # the rest was indexed
    with pytest.raises(RuntimeError):
        reconcile(store, Failing(store))
    assert Failing.attempts == 2  # not recorded as seen: the next start tries again
    reconcile(store, Indexer(store))
    assert _listed(store, "flaky") == {wheel_name("flaky", "1.0")}


# -- the folder watcher ------------------------------------------------------------------------


def _wait_for(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize("case", CASES)
def test_the_watcher_sets_a_bad_file_aside_and_indexes_the_files_after_it(
    tmp_path: Path, case: str
) -> None:
    folder = tmp_path / "packages"
    store = LocalStore(folder)
    reconcile(store, Indexer(store))
    watcher = FolderWatcher(store, Indexer(store))
    watcher.start()
    try:
        filename, data = poisoned("bad", "1.0")[case]
        (folder / "bad").mkdir()
        (folder / "bad" / filename).write_bytes(data)  # first, in the same batch
        for name in ("good", "later"):
            (folder / wheel_name(name, "1.0")).write_bytes(wheel_bytes(name, "1.0"))
        _wait_for(lambda: _listed(store, "later") and _listed(store, "good"), "good files")
    finally:
        watcher.stop()
    assert _listed(store, "bad") == set()
    assert watcher.given_up == []  # a bad file is set aside at once, never retried


def test_the_watcher_retries_a_failing_project_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "RETRY_SECONDS", (0.05, 0.05, 0.05))
    folder = tmp_path / "packages"
    store = LocalStore(folder)
    reconcile(store, Indexer(store))
    Failing.attempts = 0
    watcher = FolderWatcher(store, Failing(store))
    watcher.start()
    try:
        for name in ("flaky", "good"):
            (folder / wheel_name(name, "1.0")).write_bytes(wheel_bytes(name, "1.0"))
        _wait_for(lambda: watcher.given_up, "the watcher to give up")
        assert _listed(store, "good") == {wheel_name("good", "1.0")}
        (folder / wheel_name("later", "1.0")).write_bytes(wheel_bytes("later", "1.0"))
        _wait_for(lambda: _listed(store, "later"), "a file after it")
    finally:
        watcher.stop()
    assert watcher.given_up == [f"packages/{wheel_name('flaky', '1.0')}"]
    assert Failing.attempts == 4  # the first try and three retries, then no more


# -- skypi import --------------------------------------------------------------------------------


def test_import_sets_the_bad_files_aside_and_imports_the_rest(
    any_store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "old"
    source.mkdir()
    for case in CASES:
        filename, data = poisoned("bad", "1.0")[case]
        (source / case.replace(" ", "-")).mkdir()
        (source / case.replace(" ", "-") / filename).write_bytes(data)
    (source / wheel_name("good", "1.0")).write_bytes(wheel_bytes("good", "1.0"))
    report = Importer(any_store, workers=2).run(source)
    assert report.indexed.added == [wheel_name("good", "1.0")]
    assert len(report.skipped) == len(CASES)  # read before copying: never copied
    assert all("Invalid distribution file." in why for _, why in report.skipped)
    assert _listed(any_store, "good") == {wheel_name("good", "1.0")}
    assert list(any_store.list("packages/bad/")) == []


def test_import_goes_on_when_a_project_fails(tmp_path: Path) -> None:
    source = tmp_path / "old"
    source.mkdir()
    for name in ("flaky", "good"):
        (source / wheel_name(name, "1.0")).write_bytes(wheel_bytes(name, "1.0"))
    store = LocalStore(tmp_path / "packages")
    importer = Importer(store)
    importer.indexer = Failing(store)
    report = importer.run(source)
    assert set(report.indexed.failed) == {"flaky"}
    assert report.indexed.added == [wheel_name("good", "1.0")]


# -- uploads -------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_a_poisoned_upload_is_a_400_with_its_reason_and_leaves_nothing(
    store: LocalStore, folder: Path, case: str
) -> None:
    client = TestClient(create_app(store, Settings()))
    token = add_token(store, "upload")
    filename, data = poisoned("bad", "1.0")[case]
    response = client.post(
        "/legacy/",
        data=upload_form(data, filename, "bad", "1.0"),
        files={"content": (filename, data)},
        headers=basic(token),
    )
    assert response.status_code == 400
    assert "Invalid distribution file." in response.text
    assert not (folder / "bad").exists()


# -- damaged pages -------------------------------------------------------------------------------

HUGE = b'{"name": "good", "meta": {}, "files": [{"filename": "a", "_key": "k", "_version": "1",'
HUGE += b' "hashes": {"sha256": "x"}, "size": 1e999}], "projects": [{"name": 5}]}'
DAMAGED = [b"[]", b"null", b'{"projects": [5], "meta": {}}', HUGE, b"[" * 100_000]


@pytest.mark.parametrize("raw", DAMAGED, ids=["list", "null", "entry", "size", "deep"])
def test_a_damaged_page_is_a_page_that_cannot_be_read_never_a_crash(
    tmp_path: Path, raw: bytes
) -> None:
    store = LocalStore(tmp_path / "packages")
    store.put(f"packages/good/{wheel_name('good', '1.0')}", wheel_bytes("good", "1.0"))
    reconcile(store, Indexer(store))
    store.put("simple/good/index.json", raw)  # a hand edit, a disk that lost blocks
    store.put("simple/index.json", raw)
    store.put(f"packages/good/{wheel_name('good', '1.1')}", wheel_bytes("good", "1.1"))
    report = reconcile(store, Indexer(store))
    assert set(report.unreadable_pages) == {"good"}  # the root listing is written again
    RootListing.from_json_bytes(store.get("simple/index.json")[1])
    drift = {str(d) for d in Rebuilder(Indexer(store)).run(check=True).drift}
    assert "good: the JSON page cannot be read" in drift
    Rebuilder(Indexer(store)).run(check=False)
    assert _listed(store, "good") == {wheel_name("good", "1.0"), wheel_name("good", "1.1")}
    assert Rebuilder(Indexer(store)).run(check=True).drift == []
