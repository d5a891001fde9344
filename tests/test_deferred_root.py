"""The root listing written less often (``skypi.indexer.deferred``), on a folder and on S3
(moto): a new project is recorded as pending and its page served at once; one rebuild per
window merges a burst; a crash at any step of either side loses no project; a record written
while a rebuild runs is merged by the next one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skypi.core.keys import LANDING_KEY, ROOT_DUE_KEY, ROOT_PENDING_PREFIX, root_pending_key
from skypi.core.landing import SiteSummary
from skypi.core.pages import PendingEntry, RootEntry, RootListing
from skypi.indexer import deferred
from skypi.indexer.service import Gone, Indexer, Landed
from skypi.store.base import Body, ObjectInfo, Store
from skypi.store.local import LocalStore
from skypi.store.rebuilds import root_delay
from tests.dists import wheel_bytes, wheel_name
from tests.stores import Interposed, folder_or_bucket


class Requests:
    """Records each rebuild asked for (the SQS message's delay)."""

    def __init__(self, fail: int = 0, killed: int = 0) -> None:
        self.delays: list[int] = []
        self.fail = fail  # how many requests fail first (SQS refused them)
        self.killed = killed  # how many stop the writer first (killed before asking)

    def request(self, delay: int) -> None:
        if self.killed:
            self.killed -= 1
            raise Killed("stopped before asking for the rebuild")
        if self.fail:
            self.fail -= 1
            raise Crash("SQS refused the message")
        self.delays.append(delay)


class Crash(Exception):
    pass


class Killed(BaseException):
    """A process killed: nothing of it runs on (no handler, no clean-up)."""


class Crashing(Interposed):
    """A store that raises :class:`Crash` at its ``at``-th write or delete (0: never)."""

    def __init__(self, inner: Store, at: int = 0) -> None:
        super().__init__(inner)
        self.at, self.count = at, 0

    def before(self, method: str, *args: Any, **kwargs: Any) -> None:
        if method == "head":
            return
        self.count += 1
        if self.count == self.at:
            raise Crash(f"killed at write {self.at}")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return folder_or_bucket(request, tmp_path)


def _drop(store: Store, project: str, version: str = "1.0") -> str:
    key = f"packages/{project}/{wheel_name(project, version)}"
    store.put(key, wheel_bytes(project, version))
    return key


def _listed(store: Store) -> set[str]:
    try:
        return set(RootListing.from_json_bytes(store.get("simple/index.json")[1]).projects)
    except Exception:
        return set()


def _pending(store: Store) -> set[str]:
    return {i.key for i in store.list(ROOT_PENDING_PREFIX)}


def _count(store: Store) -> int:
    summary = SiteSummary.from_landing(store.get(LANDING_KEY)[1])
    assert summary is not None
    return summary.projects


def test_a_burst_of_new_projects_costs_one_rebuild_that_lists_them_all(store: Store) -> None:
    requests = Requests()
    indexer = Indexer(store, rebuilds=requests, root_delay=45)
    names = [f"burst-{i}" for i in range(5)]
    for name in names:  # one batch each, as five uploads would be
        indexer.apply([Landed(_drop(store, name))])
        assert store.head(f"simple/{name}/index.json") is not None  # installable at once
    assert requests.delays == [45]  # one rebuild asked for, by the first
    assert _listed(store) == set()  # the listing waits for it
    assert _pending(store) == {root_pending_key(n) for n in names}
    assert store.head(ROOT_DUE_KEY) is not None

    listing = indexer.rebuild_root()
    assert listing is not None
    assert set(listing.projects) == set(names)
    assert _listed(store) == set(names)
    assert _pending(store) == set()
    assert store.head(ROOT_DUE_KEY) is None
    assert _count(store) == 5
    assert indexer.rebuild_root() is None  # nothing pending: nothing written
    assert indexer.pages.stale_root_followers(listing, store.get("simple/index.json")[1]) == []


def test_a_known_project_and_a_replay_record_nothing(store: Store) -> None:
    requests = Requests()
    indexer = Indexer(store, rebuilds=requests)
    key = _drop(store, "known")
    indexer.apply([Landed(key)])
    indexer.rebuild_root()
    requests.delays.clear()
    indexer.apply([Landed(_drop(store, "known", "2.0"))])  # the same summary: the same entry
    indexer.apply([Landed(key)])  # a redelivered event
    assert requests.delays == []
    assert _pending(store) == set()


def test_a_project_that_loses_its_last_file_leaves_the_listing_at_the_rebuild(
    store: Store,
) -> None:
    requests = Requests()
    indexer = Indexer(store, rebuilds=requests)
    key = _drop(store, "leaving")
    indexer.apply([Landed(key)])
    indexer.rebuild_root()
    store.delete(key)
    indexer.apply([Gone(key)])
    assert _listed(store) == {"leaving"}
    assert _pending(store) == {root_pending_key("leaving")}
    indexer.rebuild_root()
    assert _listed(store) == set()
    assert _pending(store) == set()


@pytest.mark.parametrize("at", range(1, 12))  # each of its 11 writes and deletes
def test_a_rebuild_killed_at_any_write_loses_no_project(tmp_path: Path, at: int) -> None:
    """Killed at its n-th write or delete, the rebuild is sent again (its queue retries it):
    every project is listed in the end, its followers match, and no record is left."""
    inner = LocalStore(tmp_path / "packages")
    requests = Requests()
    writer = Indexer(inner, rebuilds=requests)
    for name in ("one", "two", "three"):
        writer.apply([Landed(_drop(inner, name))])
    crashing = Indexer(Crashing(inner, at), rebuilds=requests)
    with pytest.raises(Crash):  # each step of it is reached
        crashing.rebuild_root()
    Indexer(inner, rebuilds=requests).rebuild_root()  # the retry, in a fresh process
    assert _listed(inner) == {"one", "two", "three"}
    assert _pending(inner) == set()
    listing = RootListing.from_json_bytes(inner.get("simple/index.json")[1])
    assert writer.pages.stale_root_followers(listing, inner.get("simple/index.json")[1]) == []
    assert _count(inner) == 3


@pytest.mark.parametrize("at", range(1, 13))  # each of its 12 writes
def test_a_batch_killed_at_any_write_leaves_its_project_to_the_retry(
    tmp_path: Path, at: int
) -> None:
    """Killed anywhere between its page and the rebuild request, the batch is retried (the
    event comes again): the project is recorded and a rebuild asked for, then listed."""
    inner = LocalStore(tmp_path / "packages")
    requests = Requests()
    key = _drop(inner, "fresh")
    with pytest.raises(Crash):
        Indexer(Crashing(inner, at), rebuilds=requests).apply([Landed(key)])
    Indexer(inner, rebuilds=requests).apply([Landed(key)])
    assert requests.delays  # asked for, by the first run or by the retry
    Indexer(inner, rebuilds=requests).rebuild_root()
    assert _listed(inner) == {"fresh"}
    assert _pending(inner) == set()


def test_a_rebuild_due_left_by_a_writer_that_stopped_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inner = LocalStore(tmp_path / "packages")
    requests = Requests(killed=1)
    indexer = Indexer(inner, rebuilds=requests)
    with pytest.raises(Killed):  # created "rebuild due", then stopped before asking
        indexer.apply([Landed(_drop(inner, "first"))])
    indexer.apply([Landed(_drop(inner, "second"))])
    assert requests.delays == []  # within the window: that rebuild is believed to come
    monkeypatch.setattr(deferred, "OVERDUE_GRACE_SECONDS", -3600)  # long past it now
    indexer.apply([Landed(_drop(inner, "third"))])
    assert len(requests.delays) == 1
    indexer.rebuild_root()
    assert _listed(inner) == {"first", "second", "third"}


def test_a_project_recorded_while_a_rebuild_runs_is_merged_by_the_next(store: Store) -> None:
    requests = Requests()
    indexer = Indexer(store, rebuilds=requests)
    indexer.apply([Landed(_drop(store, "early"))])
    late = Indexer(store, rebuilds=requests)

    class Paused:
        """Runs the late batch when the rebuild writes the listing (after its list)."""

        def __init__(self, inner: Store) -> None:
            self.inner, self.done = inner, False

        def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
            if key == "simple/index.json" and not self.done:
                self.done = True
                late.apply([Landed(_drop(store, "late"))])
                # and "early" is recorded again meanwhile, from a newer page (a new summary)
                newer = PendingEntry(RootEntry("early", "A newer summary"), '"newer"')
                store.put(root_pending_key("early"), newer.to_json_bytes())
            return self.inner.put(key, body, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    Indexer(Paused(store), rebuilds=requests).rebuild_root()
    assert _listed(store) == {"early"}
    assert len(requests.delays) == 2  # the late one found no rebuild due: it asked again
    # the newer record of "early" is kept (its delete is If-Match the one read), and "late"'s
    assert _pending(store) == {root_pending_key("early"), root_pending_key("late")}
    indexer.rebuild_root()
    assert _listed(store) == {"early", "late"}
    assert _pending(store) == set()


@pytest.mark.parametrize("text", ["901", "-1", "soon"])
def test_a_delay_sqs_would_refuse_is_refused_at_start(text: str) -> None:
    """SQS's DelaySeconds is 0 to 900: a function configured otherwise says so at start."""
    with pytest.raises(ValueError, match="must be 0 to 900 seconds"):
        root_delay(text)
    assert root_delay(" ") == 30


def test_a_rebuild_that_could_not_be_asked_for_is_asked_by_the_retry(tmp_path: Path) -> None:
    """SQS refused the message: the batch fails (its event comes again), and the "rebuild
    due" object it made goes, so the retry asks at once instead of waiting for it."""
    inner = LocalStore(tmp_path / "packages")
    requests = Requests(fail=1)
    key = _drop(inner, "refused")
    with pytest.raises(Crash):
        Indexer(inner, rebuilds=requests).apply([Landed(key)])
    assert inner.head(ROOT_DUE_KEY) is None
    Indexer(inner, rebuilds=requests).apply([Landed(key)])
    assert len(requests.delays) == 1
    Indexer(inner, rebuilds=requests).rebuild_root()
    assert _listed(inner) == {"refused"}
