"""The local folder as the index sees it: only whole, regular files are indexed; nothing blocks;
a restart (also of a copied folder) reads only what changed; derived files can be made again."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import parse_filename
from skypi.core.metadata import sdist_metadata
from skypi.core.pages import ProjectPage, RootListing
from skypi.core.render import html_serial, render_root_html
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer, Landed
from skypi.local.serve import adopt
from skypi.local.watch import FolderWatcher
from skypi.store.base import NotFound
from skypi.store.local import TEMP_PREFIX, LocalStore
from tests.dists import metadata_text, sdist_bytes, sdist_name, wheel_bytes, wheel_name


def _page(store: LocalStore, project: str) -> ProjectPage:
    return ProjectPage.from_json_bytes(store.get(f"simple/{project}/index.json")[1])


def _fill(folder: Path, projects: int) -> None:
    for i in range(projects):
        directory = folder / f"p{i}"
        directory.mkdir(parents=True)
        (directory / wheel_name(f"p{i}", "1.0")).write_bytes(wheel_bytes(f"p{i}", "1.0"))
        (directory / sdist_name(f"p{i}", "1.0")).write_bytes(sdist_bytes(f"p{i}", "1.0"))


# -- complete before published ---------------------------------------------------------------


def test_a_tar_sdist_cut_short_is_refused_even_past_its_pkg_info() -> None:
    data = sdist_bytes("cut", "1.0", blob=os.urandom(100_000))  # PKG-INFO comes first
    dist = parse_filename(sdist_name("cut", "1.0"))
    prefix = data[:-8]  # everything but the gzip trailer (CRC32, size): PKG-INFO is readable

    def opener(blob: bytes):  # type: ignore[no-untyped-def]
        import io
        from contextlib import nullcontext

        return lambda: nullcontext(io.BytesIO(blob))

    assert sdist_metadata(dist, len(data), lambda s, n: data[s : s + n], opener(data)).name
    with pytest.raises(InvalidDistribution):
        sdist_metadata(dist, len(prefix), lambda s, n: prefix[s : s + n], opener(prefix))


def test_a_file_that_grows_while_hashed_is_not_indexed(store: LocalStore) -> None:
    key = f"packages/grow/{wheel_name('grow', '1.0')}"
    store.put(key, wheel_bytes("grow", "1.0"))
    info = store.head(key)
    assert info is not None
    with open(store.path_for(key), "ab") as fh:
        fh.write(b"more")
    with pytest.raises(InvalidDistribution, match="changed while it was read"):
        Indexer(store).sha256_of(key, size=info.size)


# -- only regular files, never blocking -----------------------------------------------------


def test_a_fifo_is_no_object_and_never_blocks(store: LocalStore, folder: Path) -> None:
    fifo = folder / "fifo" / sdist_name("fifo", "1.0")
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    key = f"packages/fifo/{fifo.name}"
    outcome: list[object] = []

    def touch_it() -> None:
        outcome.append(store.head(key))
        with pytest.raises(NotFound):
            store.open(key)
        with pytest.raises(NotFound):
            store.get(key)
        outcome.append([i.key for i in store.list("packages/")])
        outcome.append(Indexer(store).apply([Landed(key)]).added)

    worker = threading.Thread(target=touch_it, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the stuck open() so the test run can end
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("opening a FIFO blocked")
    assert outcome == [None, [], []]


def test_temp_files_of_crashed_writes_are_removed_live_ones_kept(
    store: LocalStore, folder: Path
) -> None:
    crashed = [folder / "p" / f"{TEMP_PREFIX}dead", store.state_dir / "simple" / f"{TEMP_PREFIX}x"]
    for path in crashed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    live = folder / "p" / f"{TEMP_PREFIX}live"
    with live.open("wb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # what a writer in progress holds
        report = adopt(store, show_progress=False)
        assert report.temp_files_removed == 2
        assert live.exists()
    assert not any(p.exists() for p in crashed)


# -- derived objects live in the state folder and are made again ----------------------------


def test_metadata_lives_in_the_state_folder_and_is_made_again(tmp_path: Path) -> None:
    folder, state = tmp_path / "ro", tmp_path / "state"
    _fill(folder, 2)
    before = sorted((p, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    store = LocalStore(folder, state)
    adopt(store, show_progress=False)
    assert sorted((p, p.stat().st_mtime_ns) for p in folder.rglob("*")) == before
    key = f"packages/p0/{wheel_name('p0', '1.0')}.metadata"
    assert store.path_for(key).is_relative_to(state)
    expected = store.get(key)[1]
    store.path_for(key).unlink()
    report = adopt(store, show_progress=False)
    assert report.metadata_rewritten == [key]
    assert store.get(key)[1] == expected
    store.path_for(key).write_bytes(b"Metadata-Version: 2.1\nName: evil\n")  # altered
    assert adopt(store, show_progress=False).metadata_rewritten == [key]
    assert store.get(key)[1] == expected


def test_html_that_lags_its_json_is_rendered_again(store: LocalStore, folder: Path) -> None:
    _fill(folder, 1)
    adopt(store, show_progress=False)
    indexer = Indexer(store)
    old_html = store.get("simple/p0/index.html")[1]
    key = f"packages/p0/{wheel_name('p0', '2.0')}"
    store.put(key, wheel_bytes("p0", "2.0"))
    indexer.apply([Landed(key)])
    store.put("simple/p0/index.html", old_html)  # as if killed between the JSON and the HTML
    report = adopt(store, show_progress=False)
    assert report.pages_rerendered == ["simple/p0/index.html"]
    assert html_serial(store.get("simple/p0/index.html")[1]) == _page(store, "p0").serial


# -- a restart does work proportional to what changed ---------------------------------------


class _Reads:
    """Counts every opening of a distribution's bytes (hashing included)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: list[str] = []
        for name in ("open", "get", "read_range"):
            original = getattr(LocalStore, name)

            def counted(store, key, *a, _original=original, **k):  # type: ignore[no-untyped-def]
                if key.startswith("packages/") and not key.endswith(".metadata"):
                    self.keys.append(key)
                return _original(store, key, *a, **k)

            monkeypatch.setattr(LocalStore, name, counted)


@pytest.mark.parametrize("copy", ["cp -a", "copytree"])
def test_a_restart_of_a_copied_folder_reads_no_unchanged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copy: str
) -> None:
    original = tmp_path / "original"
    _fill(original, 20)
    adopt(LocalStore(original), show_progress=False)
    copied = tmp_path / "copied"
    if copy == "cp -a":
        subprocess.run(["cp", "-a", str(original), str(copied)], check=True)
    else:  # what backup tools do: new inodes and ctimes, mtimes kept
        shutil.copytree(original, copied, copy_function=shutil.copy2)
    assert os.stat(copied / "p0").st_ino != os.stat(original / "p0").st_ino
    reads = _Reads(monkeypatch)
    store = LocalStore(copied)
    report = adopt(store, show_progress=False)
    assert reads.keys == []
    assert report.projects_checked == 0
    # One changed file is one project checked and one file read, whatever the folder's size.
    added = copied / "p3" / wheel_name("p3", "2.0")
    added.write_bytes(wheel_bytes("p3", "2.0"))
    report = adopt(store, show_progress=False)
    assert report.projects_checked == 1
    assert set(reads.keys) == {f"packages/p3/{added.name}"}
    assert added.name in {f.filename for f in _page(store, "p3").files}


def test_a_start_after_a_reindex_reads_no_project_again(tmp_path: Path) -> None:
    from skypi.cli import main

    folder = tmp_path / "packages"
    _fill(folder, 4)
    adopt(LocalStore(folder), show_progress=False)
    shutil.rmtree(folder / ".skypi" / "simple")  # every page written anew by the reindex
    assert main(["reindex", str(folder)]) == 0
    assert adopt(LocalStore(folder), show_progress=False).projects_checked == 0
    # what lands after the reindex is still seen by the next start
    (folder / "p1" / wheel_name("p1", "2.0")).write_bytes(wheel_bytes("p1", "2.0"))
    assert main(["reindex", str(folder), "--check"]) == 1  # records nothing
    report = adopt(LocalStore(folder), show_progress=False)
    assert report.projects_checked == 1
    assert report.outcome.added == [wheel_name("p1", "2.0")]


def test_a_start_walks_the_folder_once_and_lists_a_file_landing_during_its_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher's watches are set before the start-up pass walks the folder: a file that
    lands after the walk is seen by the watcher, with no second walk to catch it."""
    from skypi.local.serve import start_pass

    folder = tmp_path / "packages"
    _fill(folder, 3)
    adopt(LocalStore(folder), show_progress=False)
    late = folder / "p1" / wheel_name("p1", "2.0")
    walks: list[str] = []
    scan = LocalStore.scan

    def walked(store: LocalStore, prefix: str = "") -> object:
        walks.append(prefix)
        found = scan(store, prefix)
        if len(walks) == 1:  # just after the pass's walk, before its port would open
            late.write_bytes(wheel_bytes("p1", "2.0"))
        return found

    monkeypatch.setattr(LocalStore, "scan", walked)
    store = LocalStore(folder)
    report, watcher = start_pass(store, watch=True)
    assert watcher is not None
    try:
        assert walks == [""]
        assert report.projects_checked == 0
        deadline = time.monotonic() + 20
        while late.name not in {f.filename for f in _page(store, "p1").files}:
            assert time.monotonic() < deadline, "the file that landed during the pass"
            time.sleep(0.05)
    finally:
        watcher.stop()


def test_the_same_bytes_under_a_new_stat_are_read_once(
    store: LocalStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(folder, 3)
    adopt(store, show_progress=False)
    for path in folder.rglob("*.whl"):
        os.utime(path, ns=(time.time_ns(), time.time_ns()))  # touched: same bytes
    reads = _Reads(monkeypatch)
    adopt(store, show_progress=False)
    assert len(reads.keys) == 3
    reads.keys.clear()
    adopt(store, show_progress=False)  # the page remembers the new fingerprint
    assert reads.keys == []


# -- reindex repairs a hash that no stored bytes match --------------------------------------


def test_reindex_lists_the_stored_bytes_when_no_earlier_version_exists(
    store: LocalStore, folder: Path
) -> None:
    indexer = Indexer(store)
    key = f"packages/half/{sdist_name('half', '1.0')}"
    whole = sdist_bytes("half", "1.0")
    store.put(key, whole)
    indexer.apply([Landed(key)])
    page = _page(store, "half")
    entry = page.files[0]
    # What an older skypi published for a file it read while it was being written:
    lie = entry.__class__(**{**entry.__dict__, "sha256": "0" * 64, "size": 10, "etag": "old"})
    store.put("simple/half/index.json", page.with_files((lie,)).to_json_bytes())
    checked = Rebuilder(indexer).run(check=True).drift
    assert any("which no stored bytes match" in str(d) for d in checked)
    repaired = Rebuilder(indexer).run(check=False).drift
    assert any("the page now lists the stored file" in str(d) for d in repaired)
    fixed = _page(store, "half").files[0]
    assert (fixed.sha256, fixed.size) == (hashlib.sha256(whole).hexdigest(), len(whole))
    assert Rebuilder(indexer).run(check=True).drift == []


def _overwrite(folder: Path) -> tuple[Path, bytes, str]:
    """Replace p0's wheel in place (``rm`` then ``cp`` of other bytes, other metadata)."""
    wheel = folder / "p0" / wheel_name("p0", "1.0")
    old = hashlib.sha256(wheel.read_bytes()).hexdigest()
    data = wheel_bytes("p0", "1.0", payload=b"rebuilt", metadata=_REBUILT)
    wheel.unlink()
    wheel.write_bytes(data)
    return wheel, data, old


_REBUILT = metadata_text("p0", "1.0", summary="Rebuilt in place")


def _lists_the_stored_bytes(
    store: LocalStore, wheel: Path, data: bytes, old: str, caplog: pytest.LogCaptureFixture
) -> None:
    new = hashlib.sha256(data).hexdigest()
    listed = {f.filename: f for f in _page(store, "p0").files}[wheel.name]
    assert (listed.sha256, listed.size) == (new, len(data))
    key = f"packages/p0/{wheel.name}"
    assert store.get(key + ".metadata")[1] == _REBUILT.encode()
    html = store.get("simple/p0/index.html")[1].decode()
    assert f"sha256={new}" in html
    assert old not in html
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if str(wheel) in w and old in w and new in w], warnings
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def test_start_up_lists_a_file_overwritten_in_place_while_stopped(
    store: LocalStore, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(folder, 1)
    adopt(store, show_progress=False)
    wheel, data, old = _overwrite(folder)
    caplog.set_level(logging.INFO)
    adopt(store, show_progress=False)
    _lists_the_stored_bytes(store, wheel, data, old, caplog)


def test_the_watcher_lists_a_file_overwritten_in_place_at_once(
    store: LocalStore, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _fill(folder, 1)
    adopt(store, show_progress=False)
    indexer = _Recorder(store)
    watcher = FolderWatcher(store, indexer)
    watcher.start()
    caplog.set_level(logging.INFO)
    try:
        time.sleep(0.3)
        wheel, data, old = _overwrite(folder)
        new = hashlib.sha256(data).hexdigest()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            indexer.batches and new in {f.sha256 for f in _page(store, "p0").files}
        ):
            time.sleep(0.05)
        assert {k for batch in indexer.batches for k in batch} == {f"packages/p0/{wheel.name}"}
    finally:
        watcher.stop()
    _lists_the_stored_bytes(store, wheel, data, old, caplog)


# -- a damaged root listing is written again from the project pages ----------------------


@pytest.mark.parametrize(
    ("key", "damage"),
    [
        ("simple/index.json", b'{"meta": {"api-version": "1.1"}, "proj'),  # cut short
        ("simple/index.json", b"\x00\xffgarbage"),
        ("simple/index.json", b"[]"),
        ("simple/index.json", b'{"projects": [{"name": 5}]}'),
        ("simple/index.html", b"<!DOCTYPE html><html><body><a href"),  # cut short
    ],
)
@pytest.mark.parametrize("arrival", [False, True])
def test_start_up_writes_a_damaged_root_listing_again_from_the_pages(
    store: LocalStore,
    folder: Path,
    caplog: pytest.LogCaptureFixture,
    key: str,
    damage: bytes,
    arrival: bool,
) -> None:
    _fill(folder, 2)
    adopt(store, show_progress=False)
    store.path_for(key).write_bytes(damage)
    if arrival:  # a new project in the same start: its root update reads the listing too
        (folder / "late").mkdir()
        (folder / "late" / wheel_name("late", "1.0")).write_bytes(wheel_bytes("late", "1.0"))
    caplog.set_level(logging.WARNING)
    adopt(store, show_progress=False)  # proceeds
    expected = {"p0", "p1", "late"} if arrival else {"p0", "p1"}
    root = RootListing.from_json_bytes(store.get("simple/index.json")[1])
    assert set(root.projects) == expected
    assert store.get("simple/index.html")[1] == render_root_html(root)
    assert any("root listing" in r.getMessage() for r in caplog.records)
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


# -- the watcher reacts to writes, never to reads -------------------------------------------


class _Recorder(Indexer):
    def __init__(self, store: LocalStore) -> None:
        super().__init__(store)
        self.batches: list[list[str]] = []

    def apply(self, changes, **options):  # type: ignore[no-untyped-def,override]
        changes = list(changes)
        outcome = super().apply(changes, **options)
        self.batches.append([c.key for c in changes])  # once applied: the page is written
        return outcome


def test_the_watcher_ignores_reads_and_waits_for_the_writer_to_close(
    store: LocalStore, folder: Path
) -> None:
    _fill(folder, 1)
    adopt(store, show_progress=False)
    indexer = _Recorder(store)
    watcher = FolderWatcher(store, indexer)
    watcher.start()
    try:
        time.sleep(0.3)
        wheel = next(folder.rglob("*.whl"))
        for _ in range(20):  # reads, as the index and pip make them
            wheel.read_bytes()
            store.get("simple/p0/index.json")
        time.sleep(0.5)
        assert indexer.batches == []
        target = folder / "p0" / sdist_name("p0", "3.0")
        data = sdist_bytes("p0", "3.0")
        with target.open("wb") as fh:  # written slowly: nothing happens until it is closed
            for start in range(0, len(data), 64):
                fh.write(data[start : start + 64])
                fh.flush()
                time.sleep(0.05)
            time.sleep(0.5)
            assert indexer.batches == []
        deadline = time.monotonic() + 10
        while not indexer.batches and time.monotonic() < deadline:
            time.sleep(0.05)
        assert indexer.batches == [[f"packages/p0/{target.name}"]]
        listed = {f.filename: f.sha256 for f in _page(store, "p0").files}
        assert listed[target.name] == hashlib.sha256(data).hexdigest()
        time.sleep(0.5)  # the pages and .metadata it wrote did not wake it up again
        assert indexer.batches == [[f"packages/p0/{target.name}"]]
    finally:
        watcher.stop()


def test_a_file_written_into_a_directory_that_just_appeared_is_due_at_once(
    store: LocalStore, folder: Path
) -> None:
    """``mkdir -p new && cp x.whl new/``: the file is written before the new directory's
    watch begins, so no close of it ever comes; the kernel's watch reports it only as created
    (found by the scan of the new directory). Holding bytes, it is due after the quiet time,
    not the settle time a bare creation waits for. Events are fed to the handler as the
    observer delivers them (checked against a real observer in the test above)."""
    from watchdog.events import DirCreatedEvent, FileCreatedEvent

    from skypi.local.watch import QUIET_SECONDS, SETTLE_SECONDS

    watcher = FolderWatcher(store, Indexer(store))
    new = folder / "fresh" / "deeper"
    new.mkdir(parents=True)
    written = new / wheel_name("fresh", "1.0")
    written.write_bytes(wheel_bytes("fresh", "1.0"))
    empty = new / wheel_name("fresh", "2.0")  # created, not written yet: it waits
    empty.touch()
    (folder / "old").mkdir()
    elsewhere = folder / "old" / wheel_name("old", "1.0")  # a bare creation in an old folder
    elsewhere.write_bytes(wheel_bytes("old", "1.0"))
    for event in (
        DirCreatedEvent(str(folder / "fresh")),
        DirCreatedEvent(str(new)),
        FileCreatedEvent(str(written)),
        FileCreatedEvent(str(empty)),
        FileCreatedEvent(str(elsewhere)),
    ):
        watcher.on_any_event(event)
    now = time.monotonic()
    due = {key.rsplit("/", 1)[1]: when - now for key, (when, _) in watcher._pending.items()}
    assert due[written.name] <= QUIET_SECONDS
    assert due[empty.name] > QUIET_SECONDS
    assert due[elsewhere.name] > QUIET_SECONDS
    assert max(due.values()) <= SETTLE_SECONDS


@pytest.mark.parametrize("size", ["small", "streamed"])
def test_a_file_the_server_cannot_read_is_answered_403_and_stays_listed(
    store: LocalStore, folder: Path, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    """A listed file whose permissions forbid reading it (mode 000; simulated, since tests
    may run as root): the download is answered 403 with a message before any header of a
    200 goes out (open first, then answer), and the file stays on its page: unreadable is
    not absent, also when not even a look at it is allowed (a folder it cannot search)."""
    from fastapi.testclient import TestClient

    import skypi.store.local as local
    from skypi.api.app import create_app
    from skypi.api.settings import Settings
    from skypi.indexer.service import Gone

    blob = os.urandom(600 * 1024) if size == "streamed" else b""  # over one 256 KiB chunk
    wheel = folder / "locked" / wheel_name("locked", "1.0")
    wheel.parent.mkdir()
    wheel.write_bytes(wheel_bytes("locked", "1.0", blob=blob))
    key = f"packages/locked/{wheel.name}"
    Indexer(store).apply([Landed(key)])
    real_open, real_inside = local.LocalStore._open_file, local.LocalStore._open_inside

    def no_read(self, k):  # type: ignore[no-untyped-def]
        if k == key:
            raise PermissionError(13, "Permission denied", str(wheel))
        return real_open(self, k)

    monkeypatch.setattr(local.LocalStore, "_open_file", no_read)
    client = TestClient(create_app(store, Settings()))
    answer = client.get(f"/packages/locked/{wheel.name}")
    assert answer.status_code == 403
    assert "cannot be read" in answer.text

    def no_look(self, k, flags):  # type: ignore[no-untyped-def]
        if k == key:
            raise PermissionError(13, "Permission denied", str(wheel))
        return real_inside(self, k, flags)

    monkeypatch.setattr(local.LocalStore, "_open_inside", no_look)
    assert client.get(f"/packages/locked/{wheel.name}").status_code == 403
    outcome = Indexer(store).apply([Gone(key), Landed(key)])
    assert [k for k, _ in outcome.skipped] == [key, key]
    Rebuilder(Indexer(store)).run(check=False)
    assert [f.key for f in _page(store, "locked").files] == [key]


@pytest.mark.parametrize("errno_", ["EIO", "EMFILE", "ESTALE"])
def test_a_listed_file_the_disk_cannot_look_at_stays_listed(
    store: LocalStore, folder: Path, monkeypatch: pytest.MonkeyPatch, errno_: str
) -> None:
    """A look at a listed file that fails for another reason than its permissions (a disk
    error, too many open files, a stale NFS handle; simulated) is not "absent": its delete
    event and its landing event are skipped, reported, and the entry stays on the page (a
    page never loses a file because a look at it failed), and a conditional write over it
    refuses rather than taking it for absent."""
    import errno

    import skypi.store.local as local
    from skypi.indexer.service import Gone

    wheel = folder / "shaky" / wheel_name("shaky", "1.0")
    wheel.parent.mkdir()
    wheel.write_bytes(wheel_bytes("shaky", "1.0"))
    key = f"packages/shaky/{wheel.name}"
    Indexer(store).apply([Landed(key)])
    real_inside = local.LocalStore._open_inside
    code = getattr(errno, errno_)

    def failing(self, k, flags):  # type: ignore[no-untyped-def]
        if k == key:
            raise OSError(code, os.strerror(code), str(wheel))
        return real_inside(self, k, flags)

    monkeypatch.setattr(local.LocalStore, "_open_inside", failing)
    with pytest.raises(OSError, match=os.strerror(code)) as raised:
        store.head(key)
    assert raised.value.errno == code
    outcome = Indexer(store).apply([Gone(key), Landed(key)])
    assert [k for k, _ in outcome.skipped] == [key, key]
    assert outcome.removed == []
    assert [f.key for f in _page(store, "shaky").files] == [key]
    with pytest.raises(OSError, match=os.strerror(code)):
        store.put(key, b"other bytes", if_none_match=True)
    assert wheel.read_bytes() == wheel_bytes("shaky", "1.0")


@pytest.mark.parametrize("size", ["range", "small", "streamed"])
def test_head_and_get_of_a_file_the_server_cannot_read_agree(
    store: LocalStore,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    size: str,
) -> None:
    """HEAD answers what GET answers for a file it may not read (mode 000; simulated, since
    tests may run as root): 403 with the same headers, not a 200 with a length whose body
    never comes; the log says which file and why, for each."""
    from fastapi.testclient import TestClient

    import skypi.store.local as local
    from skypi.api.app import create_app
    from skypi.api.settings import Settings

    blob = os.urandom(600 * 1024) if size == "streamed" else b""
    wheel = folder / "locked" / wheel_name("locked", "1.0")
    wheel.parent.mkdir()
    wheel.write_bytes(wheel_bytes("locked", "1.0", blob=blob))
    key = f"packages/locked/{wheel.name}"
    Indexer(store).apply([Landed(key)])
    real_open = local.LocalStore._open_file

    def no_read(self, k):  # type: ignore[no-untyped-def]
        if k == key:
            raise PermissionError(13, "Permission denied", str(wheel))
        return real_open(self, k)

    monkeypatch.setattr(local.LocalStore, "_open_file", no_read)
    client = TestClient(create_app(store, Settings()))
    headers = {"range": "bytes=0-9"} if size == "range" else {}
    caplog.set_level(logging.WARNING)
    got = client.get(f"/packages/locked/{wheel.name}", headers=headers)
    head = client.head(f"/packages/locked/{wheel.name}", headers=headers)
    assert (head.status_code, got.status_code) == (403, 403)
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.content == b""
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == [f"cannot read {key}: permission denied"] * 2


@pytest.mark.parametrize("size", ["small", "streamed"])
def test_a_file_cut_short_while_it_is_read_is_never_a_short_200_through_lambda(
    store: LocalStore, folder: Path, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    """The app behind Mangum (the API Lambda's adapter, which buffers the answer and counts
    nothing): a file truncated right after it was opened, or between its look and its read,
    is answered 500 (the answer aborted once its status was out) or 503 (found before), never
    a 200 with fewer bytes than it says. The truncation is real: the file on disk is cut."""
    from mangum import Mangum

    from skypi.api.app import create_app
    from skypi.api.settings import Settings
    from skypi.local.emulator import LambdaContext
    from tests.apigw import http_event

    blob = os.urandom(600 * 1024) if size == "streamed" else b""  # over one 256 KiB chunk
    wheel = folder / "cut" / wheel_name("cut", "1.0")
    wheel.parent.mkdir()
    wheel.write_bytes(wheel_bytes("cut", "1.0", blob=blob))
    key = f"packages/cut/{wheel.name}"
    half = wheel.stat().st_size // 2
    real_open, real_range = LocalStore.open, LocalStore.read_range

    def open_then_cut(self, k, start=0):  # type: ignore[no-untyped-def]
        opened = real_open(self, k, start)
        os.truncate(wheel, half)
        return opened

    def cut_then_read(self, k, start, length):  # type: ignore[no-untyped-def]
        os.truncate(wheel, half)
        return real_range(self, k, start, length)

    monkeypatch.setattr(LocalStore, "open", open_then_cut)
    monkeypatch.setattr(LocalStore, "read_range", cut_then_read)
    app = Mangum(create_app(store, Settings()), lifespan="off")
    context = LambdaContext(function_name="skypi-api")
    answer = app(http_event("GET", f"/{key}"), context)  # type: ignore[arg-type]
    assert answer["statusCode"] == (500 if size == "streamed" else 503)
    assert os.path.getsize(wheel) == half


# -- a read-only folder ----------------------------------------------------------------------


def test_an_upload_to_a_read_only_folder_is_refused_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from fastapi.testclient import TestClient

    from skypi.api.app import create_app
    from skypi.api.settings import Settings
    from tests.conftest import add_token, basic
    from tests.dists import upload_form

    store = LocalStore(tmp_path / "ro", tmp_path / "state")
    token = add_token(store, "upload")
    real_put = LocalStore.put

    def put(self, key, body, **kwargs):  # type: ignore[no-untyped-def]
        if key.startswith("packages/") and not key.endswith(".metadata"):
            raise OSError(errno.EROFS, "Read-only file system")  # what a read-only mount says
        return real_put(self, key, body, **kwargs)

    monkeypatch.setattr(LocalStore, "put", put)
    client = TestClient(create_app(store, Settings()))
    data, name = wheel_bytes("ro", "1.0"), wheel_name("ro", "1.0")
    response = client.post(
        "/legacy/",
        data=upload_form(data, name, "ro", "1.0"),
        files={"content": (name, data)},
        headers=basic(token),
    )
    assert response.status_code == 403
    assert "read-only" in response.text
    assert list((tmp_path / "ro").iterdir()) == []


def test_a_symlink_is_never_indexed(store: LocalStore, folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / wheel_name("linked", "1.0")
    outside.write_bytes(wheel_bytes("linked", "1.0"))
    (folder / "linked").mkdir()
    (folder / "linked" / outside.name).symlink_to(outside)
    adopt(store, show_progress=False)
    assert store.head("simple/linked/index.json") is None
    indexer = _Recorder(store)
    watcher = FolderWatcher(store, indexer)
    watcher.start()
    try:
        time.sleep(0.3)
        (folder / "linked" / wheel_name("linked", "2.0")).symlink_to(outside)
        time.sleep(2.5)  # past the settling time of a file that only appeared
        assert indexer.batches == []
    finally:
        watcher.stop()


def test_an_unreadable_file_is_skipped_with_one_log_line(
    store: LocalStore,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import skypi.store.local as local

    _fill(folder, 2)
    secret = folder / "p1" / wheel_name("p1", "1.0")
    real_open = local.LocalStore._open_inside

    def refuse(self, key, flags):  # type: ignore[no-untyped-def]
        # what EACCES on opening it to read looks like (tests may run as root)
        if key == f"packages/p1/{secret.name}" and flags == local._READ:
            raise PermissionError(13, "Permission denied", str(secret))
        return real_open(self, key, flags)

    monkeypatch.setattr(local.LocalStore, "_open_inside", refuse)
    with caplog.at_level("WARNING"):
        report = adopt(store, show_progress=False)
        adopt(store, show_progress=False)  # a restart: nothing changed, nothing said again
    assert [k for k, _ in report.outcome.refused] == [f"packages/p1/{secret.name}"]
    assert len([r for r in caplog.records if secret.name in r.getMessage()]) == 1
    assert {f.filename for f in _page(store, "p0").files} == {
        wheel_name("p0", "1.0"),
        sdist_name("p0", "1.0"),
    }


def test_a_write_makes_no_system_call_after_its_rename(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page write's temporary file is gone with the rename: removing it again was one failed
    system call per write (a reindex of 12,000 files writes about 14,000 files)."""
    removed: list[str] = []
    real = os.unlink

    def counted(path: str, *args: object, **kwargs: object) -> None:
        removed.append(str(path))
        real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", counted)
    store.put("simple/a/index.json", b"{}")
    store.put("simple/a/index.json", b"{}", if_match=store.head("simple/a/index.json").etag)  # type: ignore[union-attr]
    assert removed == []
    assert store.get("simple/a/index.json")[1] == b"{}"
    assert not [p for p in store.state_dir.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_the_watcher_leaves_alone_a_file_this_server_uploaded_and_listed(
    store: LocalStore, folder: Path
) -> None:
    """``skypi serve``: an upload writes its file into the folder and lists it; the watcher
    sees that write too. It takes it as what it is, the echo of the upload (no second look at
    the page, no second listing: a page edited since stays as edited), while a file copied in
    by hand is indexed as ever."""
    indexer = _Recorder(store)  # one per process: the upload API's and the watcher's
    watcher = FolderWatcher(store, indexer)
    watcher.start()
    try:
        time.sleep(0.3)
        key = f"packages/up/{wheel_name('up', '1.0')}"
        store.put(key, wheel_bytes("up", "1.0"), if_none_match=True)
        indexer.apply([Landed(key, upload=True)])
        (folder / "dropped").mkdir()
        (folder / "dropped" / wheel_name("dropped", "1.0")).write_bytes(
            wheel_bytes("dropped", "1.0")
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            "dropped" in k for batch in indexer.batches for k in batch
        ):
            time.sleep(0.05)
    finally:
        watcher.stop()
    looked_at = {k for batch in indexer.batches[1:] for k in batch}  # the watcher's
    assert looked_at == {f"packages/dropped/{wheel_name('dropped', '1.0')}"}
    assert [f.key for f in _page(store, "up").files] == [key]
    assert not indexer.echo(key)  # once: a later event of that key is looked at again


def test_a_page_is_read_and_written_through_its_descriptor_alone(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A buffered file object over each page's descriptor asked the kernel three more things
    (fstat, a terminal check, a seek) per open: about 50,000 system calls of a reindex of
    3,000 files. Reads and writes of bytes go through the descriptor itself."""
    import skypi.store.local as local

    def buffered(*args: object, **kwargs: object) -> None:
        raise AssertionError("a buffered file object")

    store.put("simple/a/index.json", b"{}")  # its folder made once
    monkeypatch.setattr(local.os, "fdopen", buffered)
    monkeypatch.setattr(local, "open", buffered, raising=False)
    put = store.put("simple/a/index.json", b'{"a": 1}')
    swapped = store.put("simple/a/index.json", b'{"a": 2}', if_match=put.etag)
    info, body = store.get("simple/a/index.json")
    assert (info.etag, body) == (swapped.etag, b'{"a": 2}')
    assert store.head("simple/a/index.json") == info


def test_the_watcher_does_not_watch_the_state_folder(store: LocalStore, folder: Path) -> None:
    """The state folder lives inside the folder by default: the pages written there (several
    events for each file) never reach the watcher, while a file copied in still does."""
    seen: list[str] = []

    class Recording(FolderWatcher):
        def on_any_event(self, event):  # type: ignore[no-untyped-def]
            seen.append(os.fsdecode(event.src_path))
            super().on_any_event(event)

    indexer = _Recorder(store)
    watcher = Recording(store, indexer)
    watcher.start()
    try:
        time.sleep(0.3)
        store.put("simple/demo/index.html", b"<html></html>")  # a folder made, a file written
        (folder / "dropped").mkdir()
        (folder / "dropped" / wheel_name("dropped", "1.0")).write_bytes(
            wheel_bytes("dropped", "1.0")
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not indexer.batches:
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert indexer.batches == [[f"packages/dropped/{wheel_name('dropped', '1.0')}"]]
    state = str(store.state_dir)
    assert [p for p in seen if p == state or p.startswith(state + os.sep)] == []
