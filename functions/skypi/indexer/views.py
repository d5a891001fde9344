"""Views over an upstream index, on any store: what a miss does (fetch upstream's page, apply
the policy, store the view's pages) and what a file's first download does (fetch it, check it
against upstream's SHA-256, keep it).

A function of (store, upstream client, clock): ``skypi serve`` calls it from its read path; on
AWS the Lambda behind CloudFront's ``/view/*`` origin group calls the same methods on a miss
(docs/views.md). Every later read of what it stored is a plain read of a stored object.

A view's stored page says when it was made, from which policy and OSV data, and when it next
changes by time alone; a read of a page that is due (or whose upstream page is older than the
policy's ``refresh-minutes``) makes it again, from the kept upstream page when that is still
fresh, or after revalidating it with its ETag. Nothing runs while nobody reads.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name

from skypi.core.errors import CorruptDocument, DoesNotExist, InvalidRequest
from skypi.core.http import gzip_page
from skypi.core.keys import (
    METADATA_SUFFIX,
    OSV_KEY,
    PAGE_OBJECTS,
    SIMPLE_PREFIX,
    VIEW_DUE_KEY,
    VIEWS_PREFIX,
    gzip_key,
    page_json_key,
    page_key,
    view_file_key,
    view_files_folder,
    view_key,
    view_policy_key,
    view_upstream_key,
)
from skypi.core.namespaces import Namespaces, covers
from skypi.core.osv import OsvData
from skypi.core.pages import RootListing, format_time, parse_time
from skypi.core.render import render_project_html
from skypi.core.viewdue import DueRecord, Page
from skypi.core.viewpolicy import (
    UpstreamError,
    UpstreamPage,
    ViewOutcome,
    decide,
    parse_upstream_page,
    pin_moment,
    purged,
)
from skypi.core.views import ViewPolicy, policy_from_json_bytes
from skypi.store.base import NotFound, PreconditionFailed, Store
from skypi.store.namespaces import NamespaceRepository
from skypi.store.sinks import sink_for
from skypi.store.upstream import (
    PastWaitLimit,
    Upstream,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
)

if TYPE_CHECKING:
    from skypi.store.cdn import Cdn

log = logging.getLogger("skypi.views")
Clock = Callable[[], datetime]
Timer = Callable[[datetime], None]  # arms the one timer (skypi.store.scheduler) at a moment
OSV_RECHECK_SECONDS = 5.0
MAX_ABSENT = 10_000  # names upstream answered 404 for, remembered for refresh-minutes
DUE_BUDGET = 100  # pages one run of the timer makes again (each asks upstream at most once)
TIMER_LEAD = timedelta(minutes=1)  # the timer is armed at least this far ahead
# A run of the timer first arms it this far ahead (a Lambda's longest run), so that a run
# that dies still has a successor; it stops making pages with this much time left, so that
# it always records what it made and arms the next run.
RUN_FALLBACK = timedelta(minutes=15)
RUN_MARGIN_SECONDS = 60.0
# The largest upstream file fetched while a client waits, and how long that fetch may take:
# CloudFront waits up to 60 s for the view Lambda (its origin response timeout, without a quota
# increase), and ``skypi serve`` keeps to the same figures. Past either, the client is sent to
# upstream's own URL and the file is filled in the background (``Views.background``).
FILL_LIMIT = 64 * 1024 * 1024
WAIT_BUDGET = 25.0


class Served(enum.Enum):
    """What a view answers for a project."""

    PRIVATE = "private"  # this index's own page (a private or reserved name)
    STORED = "stored"  # the view's stored page
    MISSING = "missing"  # no page: upstream has none, or the policy shows none


class HashMismatch(Exception):
    """Upstream's bytes are not what its page says (refused, logged, never stored)."""


class TooBigToFill(Exception):
    """A file larger than this server fetches while a client waits: the client is sent to
    upstream's own URL (the page's hash still checks the bytes it gets)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{url} is larger than this server fetches while a client waits")
        self.url = url


class FillStopped(Exception):
    """A background fill stopped part-way because its server is stopping (nothing stored)."""


FILL_EVENT = "view-fill"  # what a view Lambda's asynchronous invocation of itself carries
MAX_EVENT_FIELD = 512  # characters of one field of that event (a URL path's part, at most)


@dataclass(frozen=True)
class FillRequest:
    """A file :meth:`Views.file` did not wait for, as a request named it: everything about it
    (listed? from where? which hash?) is looked up again when the fill runs."""

    view: str
    project: str
    filename: str
    pin: str | None = None
    stop: threading.Event | None = field(default=None, compare=False)  # set: stop part-way

    def to_event(self) -> dict[str, Any]:
        return {"skypi": FILL_EVENT, "view": self.view, "project": self.project,
                "filename": self.filename, "pin": self.pin}  # fmt: skip

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> FillRequest | None:
        """The request an event names; None when it is not one (a field missing, not text,
        or longer than any path holds)."""
        named = [event.get(k) for k in ("view", "project", "filename")]
        pin = event.get("pin")
        texts = [f for f in [*named, pin] if isinstance(f, str) and 0 < len(f) <= MAX_EVENT_FIELD]
        if len(texts) != len(named) + (pin is not None):
            return None
        return cls(texts[0], texts[1], texts[2], texts[3] if pin is not None else None)


@dataclass(frozen=True)
class Source:
    """Where a listed file that is not stored yet comes from."""

    request: FillRequest
    key: str
    url: str
    sha256: str
    size: int | None  # upstream's page's (PEP 700), when it gives one
    metadata: bool  # a PEP 658 metadata file (small: always fetched while the client waits)


def _stopped(stop: threading.Event, url: str) -> None:
    if stop.is_set():
        raise FillStopped(f"{url}: stopped with the server")


@dataclass(frozen=True)
class Snapshot:
    """The upstream page a view last read, with its ETag and when it was read."""

    page: UpstreamPage | None  # None: upstream has no such project
    etag: str | None
    fetched: datetime
    url: str

    def to_json_bytes(self) -> bytes:
        doc = {
            "etag": self.etag,
            "fetched": format_time(self.fetched),
            "url": self.url,
            "page": self.page.to_json() if self.page is not None else None,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> Snapshot:
        doc = json.loads(raw)
        page = UpstreamPage.from_json(doc["page"]) if doc["page"] is not None else None
        return cls(page, doc["etag"], parse_time(doc["fetched"]), doc["url"])


def _now() -> datetime:
    return datetime.now(UTC)


class Views:
    """Every view of one index."""

    def __init__(
        self,
        store: Store,
        upstream: Upstream | None = None,
        clock: Clock = _now,
        *,
        timer: Timer | None = None,
        fill_limit: int | None = None,
        cdn: Cdn | None = None,
        wait_budget: float | None = None,
        background: Callable[[FillRequest], object] | None = None,
    ):
        self.store = store
        self.upstream = upstream or Upstream()
        self.clock = clock
        # Where stored pages are read with no code running (CloudFront): the due record is kept
        # and the timer armed for the next page due (None: the next read makes it again).
        self.timer = timer
        # The largest file fetched while a client waits (None: any), and how long its fetch
        # may take then (None: the upstream's own budget); what is not waited for is handed
        # to ``background`` (skypi.indexer.fills locally, the view Lambda's own event on AWS).
        self.fill_limit = fill_limit
        self.wait_budget = wait_budget
        self.background = background
        # Where the stored files are also cached (CloudFront): told to forget those deleted.
        self.cdn = cdn
        self.namespaces = NamespaceRepository(store)
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()
        # Names upstream has no project for, and when it said so (bounded: anyone can ask).
        self._absent: dict[tuple[str, str], datetime] = {}
        self._osv_cache: tuple[OsvData, str, float] | None = None  # data, ETag, when checked

    # -- policies -----------------------------------------------------------------------------

    def policy(self, view: str) -> ViewPolicy:
        try:
            _, raw = self.store.get(view_policy_key(view))
        except (NotFound, ValueError):
            raise DoesNotExist(f"No view {view!r}: see 'skypi view list'.") from None
        return policy_from_json_bytes(view, raw)

    def names(self) -> list[str]:
        found = (info.key.split("/") for info in self.store.list(VIEWS_PREFIX))
        return sorted(
            {parts[1] for parts in found if parts[-1] == "policy.json" and len(parts) == 3}
        )

    def save(self, policy: ViewPolicy, *, new: bool) -> None:
        """Store ``policy``: a new view (refused when it exists) or a changed one. Its pages
        follow the change at their next read (each page records the policy it was made by)."""
        try:
            self.store.put(view_policy_key(policy.name), policy.to_json_bytes(), if_none_match=new)
        except PreconditionFailed:
            raise InvalidRequest(f"The view {policy.name!r} exists already.") from None

    def remove(self, view: str) -> int:
        """Delete a view: its policy, pages, kept upstream pages and cached files."""
        self.policy(view)
        gone = 0
        for info in list(self.store.list(f"{VIEWS_PREFIX}{view}/")):
            self.store.delete(info.key)
            gone += 1
        return gone

    def osv(self, seen: str | None = None) -> tuple[OsvData, str]:
        """The index's OSV data and its ETag ("" when none was imported). Parsed once per
        change (it holds thousands of records), and looked at again at most every
        :data:`OSV_RECHECK_SECONDS`: an import by another process is seen within seconds, and
        at once when a stored page was made from data with another ETag (``seen``), so that
        a page made by another process from newer data is never made again from older."""
        moment = time.monotonic()
        cached = self._osv_cache
        fresh = seen is None or (cached is not None and seen == cached[1])
        if cached is not None and fresh and moment - cached[2] < OSV_RECHECK_SECONDS:
            return cached[0], cached[1]
        info = self.store.head(OSV_KEY)
        etag = info.etag if info is not None else ""
        if cached is not None and cached[1] == etag:
            self._osv_cache = (cached[0], etag, moment)
            return cached[0], etag
        try:
            info, raw = self.store.get(OSV_KEY)
            data, etag = OsvData.from_json_bytes(raw), info.etag
        except NotFound:
            data, etag = OsvData(), ""
        self._osv_cache = (data, etag, moment)
        return data, etag

    def import_osv(self, data: OsvData) -> None:
        self.store.put(OSV_KEY, data.to_json_bytes())
        self._osv_cache = None

    # -- a project's page ---------------------------------------------------------------------

    def _lock(self, view: str, project: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((view, project), threading.Lock())

    def private(self, project: str) -> tuple[bool, Namespaces]:
        """Whether ``project`` is published here, and the index's namespaces."""
        return self.store.head(page_json_key(project)) is not None, self.namespaces.all()

    def project(self, view: str, project: str) -> Served:
        """What ``/view/<view>/simple/<project>/`` serves, made (or made again) if needed."""
        policy = self.policy(view)
        name = canonicalize_name(project)
        private, namespaces = self.private(name)
        if private or namespaces.covering(name):
            return Served.PRIVATE
        with self._lock(view, name):
            state = self._stored_state(view, name)
            osv, osv_etag = self.osv(state.get("osv") if state is not None else None)
            if state is not None and not self._due(state, policy, osv_etag):
                return Served.STORED
            outcome = self._outcome(policy, name, osv, refetch=True)
            due = self._store(policy, name, outcome, osv_etag)
        self._note_due({(view, name): due})
        if outcome.page is not None and due is None:  # published here meanwhile
            return Served.PRIVATE
        return Served.STORED if outcome.page is not None else Served.MISSING

    def pinned(self, view: str, project: str, pin: str) -> tuple[Served, dict[str, bytes]]:
        """The page of ``/view/<view>@<pin>/simple/<project>/``, made for this request (any
        date may be asked for, so these pages are not stored): each representation's bytes."""
        policy = self.policy(view)
        name = canonicalize_name(project)
        private, namespaces = self.private(name)
        if private or namespaces.covering(name):
            return Served.PRIVATE, {}
        osv, osv_etag = self.osv()
        outcome = self._outcome(policy, name, osv, refetch=True, pin=pin)
        if outcome.page is None:
            return Served.MISSING, {}
        return Served.STORED, _representations(policy, outcome, osv_etag, self.clock())

    def explain(self, view: str, project: str, pin: str | None = None) -> ViewOutcome:
        """Every upstream file's verdict for ``project`` now (``skypi view explain``)."""
        policy = self.policy(view)
        name = canonicalize_name(project)
        return self._outcome(policy, name, self.osv()[0], refetch=False, pin=pin)

    def refresh(self, view: str, projects: list[str] | None = None) -> dict[str, Served]:
        """Revalidate upstream pages now and make the view's pages again: ``projects``, or
        every upstream project the view has served."""
        policy = self.policy(view)
        names = [canonicalize_name(p) for p in projects] if projects else self.served(view)
        osv, osv_etag = self.osv()
        done = {}
        dues: dict[Page, datetime | None] = {}
        for name in names:
            private, namespaces = self.private(name)
            if private or namespaces.covering(name):
                done[name] = Served.PRIVATE
                continue
            with self._lock(view, name):
                outcome = self._outcome(policy, name, osv, refetch=True, force=True)
                dues[(view, name)] = self._store(policy, name, outcome, osv_etag)
            done[name] = Served.STORED if outcome.page is not None else Served.MISSING
        self._note_due(dues)
        return done

    def follow_change(
        self, view: str | None = None, time_left: Callable[[], float] | None = None
    ) -> int:
        """A view's policy (``view``) or the OSV data (None) changed: the stored pages it
        affects are made again now, not when each is next due, and the cached files no form
        of the view lists any more are deleted. Where a timer makes the due pages (AWS), they
        are marked due now and this run makes them (the timer armed for any left over);
        elsewhere each is made here. How many pages were made."""
        if view is None:
            self._osv_cache = None  # read the new data now, not within seconds
        names = [view] if view is not None else self._view_folders()
        pages = [(v, name) for v in names for name in self.served(v)]
        if self.timer is None:
            for page in pages:
                self._remake(*page)
            return len(pages)
        self._note_due(dict.fromkeys(pages, self.clock()))
        return self.refresh_due(time_left=time_left)

    # -- a name this index takes over ------------------------------------------------------

    def yield_to_private(self, project: str) -> list[str]:
        """A name just published here leaves every view at once: each view's stored page of
        it is deleted (and the name its list of served names), so that the next read of it
        misses the stored pages and gets the private page (on AWS, from the view function
        behind the bucket). What the indexer does when it creates a project's page; the views
        that had a page of it. One listing of the views (their folders, not their objects)
        and one look per view; a page's deletes and its list's swap only where it had one."""
        name = canonicalize_name(project)
        return [view for view in self._view_folders() if self._withdraw(view, name)]

    def yield_to_namespace(self, namespace: str) -> list[tuple[str, str]]:
        """A namespace just reserved here (PEP 752) takes every name it covers out of every
        view at once: one listing of the views, one of each view's pages that start with
        the namespace's name; the ``(view, project)`` pages deleted."""
        gone = []
        for view in self._view_folders():
            start = view_key(view, f"{SIMPLE_PREFIX}{namespace}")
            for folder in self.store.folders(start):
                name = folder.rstrip("/").rsplit("/", 1)[-1]
                if covers(namespace, name) and self._withdraw(view, name):
                    gone.append((view, name))
        return gone

    def _view_folders(self) -> list[str]:
        """The names of the folders under ``views/`` (a key someone wrote by hand, such as
        ``views/../x``, names no view a key can be built for: skipped, never an error)."""
        names = (f[len(VIEWS_PREFIX) : -1] for f in self.store.folders(VIEWS_PREFIX))
        return [name for name in names if name not in {"", ".", ".."}]

    def _withdraw(self, view: str, name: str) -> bool:
        """Delete the view's stored page of ``name`` (its JSON, written last, deleted last:
        the one looked at) and take ``name`` out of its served names; whether it had one."""
        if self.store.head(view_key(view, page_json_key(name))) is None:
            return False
        for key in _page_keys(view, name):
            self.store.delete(key)
        self._served(view, name, add=False)
        log.info("view %s: %s is this index's now; its stored page is deleted", view, name)
        return True

    # -- the timer: pages due by time alone, where no read runs code -------------------------

    def refresh_due(
        self, budget: int = DUE_BUDGET, time_left: Callable[[], float] | None = None
    ) -> int:
        """Make again the stored pages that are due (at most ``budget``, the longest overdue
        first, while ``time_left`` gives more than :data:`RUN_MARGIN_SECONDS`), then arm the
        timer for the next one (none when nothing is left): what the timer runs. A name
        published here since leaves the view; how many were made."""
        record, _ = self._due_record()
        due = record.due(self.clock(), budget)
        if due and self.timer is not None:
            self.timer(self.clock() + RUN_FALLBACK)  # moved again at the end of this run
        changes: dict[Page, datetime | None] = {}
        for page in due:
            if time_left is not None and time_left() < RUN_MARGIN_SECONDS:
                log.warning("views: %d due pages left for the next run", len(due) - len(changes))
                break
            changes[page] = self._remake(*page)
        self._note_due(changes, run=True)
        return len(changes)

    def _remake(self, view: str, name: str) -> datetime | None:
        """Make one due page again; when it is next due (None: the view has no page)."""
        try:
            policy = self.policy(view)
        except (DoesNotExist, InvalidRequest):  # removed, or its policy broken: forgotten
            log.warning("view %s: no usable policy; its page of %s is not refreshed", view, name)
            return None
        osv, osv_etag = self.osv()
        private, namespaces = self.private(name)
        try:
            with self._lock(view, name):
                if private or namespaces.covering(name):  # the name is this index's now
                    return self._store(policy, name, ViewOutcome(None), osv_etag)
                outcome = self._outcome(policy, name, osv, refetch=True)
                return self._store(policy, name, outcome, osv_etag, unchanged=True)
        except (UpstreamUnavailable, UpstreamRefused) as exc:
            log.warning("view %s: %s is not refreshed now: %s", view, name, exc)
            return self.clock() + policy.refresh

    def _due_record(self) -> tuple[DueRecord, str | None]:
        try:
            info, raw = self.store.get(VIEW_DUE_KEY)
        except NotFound:
            return DueRecord(), None
        try:
            return DueRecord.from_json_bytes(raw), info.etag
        except CorruptDocument as exc:  # made again from the pages' next reads
            log.error("%s; starting a new one", exc)
            return DueRecord(), info.etag

    def _note_due(self, changes: dict[Page, datetime | None], *, run: bool = False) -> None:
        """Record when each page of ``changes`` is next due, and arm the timer if the next
        page due is earlier than it is armed for, or (``run``) it has just gone off."""
        if self.timer is None:
            return
        for _ in range(20):
            record, etag = self._due_record()
            changed = self._armed(record.updated(changes), force=run)
            if changed == record:  # nothing new (an idle timer's run writes nothing)
                return
            try:
                if etag is None:
                    self.store.put(VIEW_DUE_KEY, changed.to_json_bytes(), if_none_match=True)
                else:
                    self.store.put(VIEW_DUE_KEY, changed.to_json_bytes(), if_match=etag)
                return
            except PreconditionFailed:
                continue
        log.error("the views' due record kept changing: %s not recorded", sorted(changes))

    def _armed(self, record: DueRecord, *, force: bool) -> DueRecord:
        """``record`` with the timer armed for its earliest page (if it is not already)."""
        earliest, now = record.earliest(), self.clock()
        if earliest is None or self.timer is None:
            return record
        armed = record.armed
        if not force and armed is not None and now < armed <= earliest:
            return record
        moment = max(earliest, now + TIMER_LEAD)
        try:
            self.timer(moment)
        except Exception:  # the page is stored; the next miss or run arms it again
            log.exception("could not arm the views' timer for %s", moment)
            return replace(record, armed=None)
        return replace(record, armed=moment)

    def _outcome(
        self,
        policy: ViewPolicy,
        name: str,
        osv: OsvData,
        *,
        refetch: bool,
        force: bool = False,
        pin: str | None = None,
    ) -> ViewOutcome:
        private, namespaces = self.private(name)
        snapshot = self._snapshot(policy, name, revalidate=refetch, force=force)
        return decide(
            policy,
            name,
            private=private,
            namespaces=namespaces,
            upstream=snapshot.page,
            now=self.clock(),
            osv=osv,
            serial=int(self.clock().timestamp()),
            pin=pin_moment(pin) if pin is not None else None,
        )

    def _snapshot(
        self, policy: ViewPolicy, name: str, *, revalidate: bool, force: bool = False
    ) -> Snapshot:
        """The upstream page, from the kept one while it is fresh, else from upstream
        (revalidated with its ETag). A failing upstream leaves the kept one in use."""
        key = view_upstream_key(policy.name, name)
        kept: Snapshot | None = None
        try:
            kept = Snapshot.from_json_bytes(self.store.get(key)[1])
        except (NotFound, ValueError, KeyError, TypeError) as exc:
            if not isinstance(exc, NotFound):
                log.warning(
                    "view %s: the kept upstream page of %s is unreadable", policy.name, name
                )
        now = self.clock()
        if (
            kept is not None
            and not force
            and (not revalidate or now < kept.fetched + policy.refresh)
        ):
            return kept
        url = f"{policy.upstream}{name}/"
        absent = self._absent.get((policy.name, name))
        if kept is None and not force and absent is not None and now < absent + policy.refresh:
            return Snapshot(None, None, absent, url)
        try:
            fetched = self.upstream.page(url, kept.etag if kept and kept.page else None)
        except (UpstreamUnavailable, UpstreamRefused) as exc:
            if kept is None:
                raise
            log.warning(
                "view %s: %s; serving the page kept from %s", policy.name, exc, kept.fetched
            )
            return kept
        if fetched.status == 304 and kept is not None:
            snapshot = Snapshot(kept.page, kept.etag, now, kept.url)
        elif fetched.status == 404:  # remembered in memory only: any name can be asked for
            self._remember_absent(policy.name, name, now)
            self.store.delete(key)
            return Snapshot(None, None, now, url)
        else:
            try:
                page = parse_upstream_page(fetched.body, fetched.url or url)
            except UpstreamError as exc:
                raise UpstreamUnavailable(f"{url}: {exc}") from None
            snapshot = Snapshot(page, fetched.etag, now, fetched.url or url)
        self.store.put(key, snapshot.to_json_bytes())
        return snapshot

    def _remember_absent(self, view: str, name: str, when: datetime) -> None:
        with self._guard:
            if len(self._absent) >= MAX_ABSENT:
                self._absent.clear()
            self._absent[(view, name)] = when

    def _stored_state(self, view: str, name: str) -> dict[str, Any] | None:
        try:
            _, raw = self.store.get(view_key(view, page_json_key(name)))
            state = json.loads(raw)["_view"]
        except (NotFound, ValueError, KeyError, TypeError):
            return None
        return state if isinstance(state, dict) else None

    def _due(self, state: dict[str, Any], policy: ViewPolicy, osv_etag: str) -> bool:
        """Whether a stored page must be made again: its policy or OSV data changed, its
        next change by time came, or its upstream page is older than the policy allows."""
        now = self.clock()
        if state.get("policy") != _digest(policy) or state.get("osv") != osv_etag:
            return True
        due = state.get("next-change")
        if due and now >= parse_time(due):
            return True
        return now >= parse_time(state["fetched"]) + policy.refresh

    def _store(
        self,
        policy: ViewPolicy,
        name: str,
        outcome: ViewOutcome,
        osv_etag: str,
        *,
        unchanged: bool = False,
    ) -> datetime | None:
        """Write the view's page (every representation, and gzip variants), or remove it;
        when it is next due (None: removed). ``unchanged``: a page that would differ from the
        stored one only by when it was made is not written again."""
        view, now = policy.name, self.clock()
        self._purge(view, name, outcome)
        if outcome.page is None:
            for key in _page_keys(view, name):
                self.store.delete(key)
            self._served(view, name, add=False)
            return None
        pages = _representations(policy, outcome, osv_etag, now)
        due = now + policy.refresh
        due = min(due, outcome.next_change) if outcome.next_change else due
        if unchanged and _same_page(self._stored_json(view, name), pages["json"]):
            return due
        for kind, content in pages.items():
            key = view_key(view, page_key(name, kind))  # type: ignore[arg-type]
            self.store.put(gzip_key(key), gzip_page(content))
            self.store.put(key, content)
        self._served(view, name, add=True)
        # Published or reserved here while this page was being made: the indexer's (or the
        # namespace's) look at the views may have come before these writes, so this one takes
        # the page back out.
        private, namespaces = self.private(name)
        if private or namespaces.covering(name):
            self._withdraw(view, name)
            return None
        return due

    def _purge(self, view: str, name: str, outcome: ViewOutcome) -> list[str]:
        """Delete the view's cached files of ``name`` that no form of it lists any more
        (:func:`~skypi.core.viewpolicy.purged`), and have the CDN forget them; their keys.
        One listing of the project's cached files per page made."""
        folder = view_files_folder(view, name)
        cached = [info.key[len(folder) :] for info in self.store.list(folder)]
        gone = [folder + filename for filename in purged(outcome, cached)]
        for key in gone:
            self.store.delete(key)
        if gone:
            log.warning("view %s: deleted %d cached files of %s: %s", view, len(gone), name, gone)
            if self.cdn is not None:
                self.cdn.invalidate(gone)
        return gone

    def _stored_json(self, view: str, name: str) -> bytes | None:
        try:
            return self.store.get(view_key(view, page_json_key(name)))[1]
        except NotFound:
            return None

    # -- the root listing -----------------------------------------------------------------------

    def served(self, view: str) -> list[str]:
        return sorted(self._root(view)[0].projects)

    def _root(self, view: str) -> tuple[RootListing, str | None]:
        try:
            info, raw = self.store.get(view_key(view, page_key(None, "json")))
        except NotFound:
            return RootListing(), None
        return RootListing.from_json_bytes(raw), info.etag

    def _served(self, view: str, name: str, *, add: bool) -> None:
        """Add or remove ``name`` in the view's list of upstream names (compare-and-swap)."""
        key = view_key(view, page_key(None, "json"))
        for _ in range(20):
            root, etag = self._root(view)
            changed = root.with_projects({name: (name if add else None, "")})  # type: ignore[dict-item]
            if changed is root:
                return
            try:
                if etag is None:
                    self.store.put(key, changed.to_json_bytes(), if_none_match=True)
                else:
                    self.store.put(key, changed.to_json_bytes(), if_match=etag)
                return
            except PreconditionFailed:
                continue

    def root(self, view: str, private: RootListing) -> RootListing:
        """The view's root: the private names and the upstream names it has served (a name
        published here since is the private one)."""
        self.policy(view)
        mine = self._root(view)[0]
        names = dict(mine.projects) | dict(private.projects)
        return RootListing(names, max(mine.serial, private.serial))

    # -- files --------------------------------------------------------------------------------

    def file(self, view: str, project: str, filename: str, pin: str | None = None) -> str | None:
        """The key of a listed upstream file (or its ``.metadata``) of the view, fetched and
        checked against upstream's SHA-256 the first time; None when the view (or its form
        pinned at ``pin``) does not list it (a private or reserved name, a blocked or unknown
        file). A view and its pinned forms share their cached files.

        With a ``fill_limit``, a file larger than it (by upstream's page, its Content-Length or
        its bytes) or slower than ``wait_budget`` is not waited for: :class:`TooBigToFill`
        sends the client to upstream while ``background`` fills it (:meth:`fill`)."""
        source = self._source(view, project, filename, pin)
        if not isinstance(source, Source):
            return source
        waits = self.fill_limit is not None and not source.metadata
        if waits and source.size is not None and source.size > (self.fill_limit or 0):
            raise self._later(source)
        try:
            self._fill(
                source,
                wait_limit=self.fill_limit if waits else None,
                budget=self.wait_budget if waits else ...,
            )
        except (PastWaitLimit, UpstreamTimeout) as exc:
            if not waits:
                raise
            log.info("view %s: %s; filled in the background", view, exc)
            raise self._later(source) from None
        return source.key

    def fill(self, request: FillRequest, budget: float | None = None) -> bool:
        """Fetch a file :meth:`file` did not wait for (what ``background`` runs), with no
        size limit but upstream's, within ``budget`` seconds, streamed into the store (a
        multipart upload on S3), and store it only if its SHA-256 is the page's; whether it
        stored it (False: not listed any more, or stored already)."""
        source = self._source(request.view, request.project, request.filename, request.pin)
        if not isinstance(source, Source):
            return False
        stop = request.stop
        on_chunk = None if stop is None else lambda _: _stopped(stop, source.url)
        return self._fill(source, streamed=True, budget=budget, on_chunk=on_chunk)

    def _later(self, source: Source) -> TooBigToFill:
        """Hand ``source`` to ``background`` (if there is one); the redirect to answer with."""
        if self.background is not None:
            try:
                self.background(source.request)
            except Exception:  # the client still gets upstream's file; the next request asks again
                log.exception(
                    "view %s: could not start filling %s", source.request.view, source.url
                )
        return TooBigToFill(source.url)

    def _source(
        self, view: str, project: str, filename: str, pin: str | None
    ) -> Source | str | None:
        """Where a listed file comes from; its key when it is stored already; None when the
        view does not list it (or lists it from a host it does not fetch from any more)."""
        name = canonicalize_name(project)
        base = filename.removesuffix(METADATA_SUFFIX)
        listed = self._listed(view, name, base, pin)
        if listed is None:  # never fetched (again) while the view does not list it
            raise DoesNotExist(self._unlisted(view, name, base, pin))
        if base != filename:  # PEP 658: only when the page lists the metadata's hash
            meta = listed.get("core-metadata")
            sha256 = meta.get("sha256") if isinstance(meta, dict) else None
        else:
            sha256 = listed["hashes"]["sha256"]
        if not isinstance(sha256, str):
            return None
        key = view_file_key(view, name, filename)
        if self.store.head(key) is not None:
            return key
        kept = Snapshot.from_json_bytes(self.store.get(view_upstream_key(view, name))[1])
        found = kept.page.find(base) if kept.page is not None else None
        if found is None:
            return None
        if urlsplit(found.url).netloc.lower() not in self.policy(view).file_hosts:
            return None  # moved to a host the view does not fetch from since it was listed
        metadata = base != filename
        url = found.url + (METADATA_SUFFIX if metadata else "")
        request = FillRequest(view, name, filename, pin)
        return Source(request, key, url, sha256, None if metadata else found.size, metadata)

    def _unlisted(self, view: str, name: str, filename: str, pin: str | None) -> str:
        """Why the view (or its form pinned at ``pin``) serves no ``filename`` of ``name``."""
        try:
            outcome = self.explain(view, name, pin)
        except (UpstreamUnavailable, UpstreamRefused):
            return f"View {view!r} does not list {filename} now."
        found = next((v for v in outcome.verdicts if v.filename == filename), None)
        if found is not None:
            why = f"{found.reason.value}: {found.detail}" if found.detail else found.reason.value
        else:
            why = outcome.notes[0] if outcome.notes else "upstream lists no such file"
        return f"View {view!r} does not serve {filename} ({why})."

    def _listed(
        self, view: str, name: str, filename: str, pin: str | None
    ) -> dict[str, Any] | None:
        """The entry of ``filename`` on the page the view (or its form pinned at ``pin``)
        serves now; None when it lists no such file."""
        if pin is not None:
            pages = self.pinned(view, name, pin)[1]
            raw = pages.get("json", b"")
        elif self.project(view, name) is Served.STORED:
            try:
                raw = self.store.get(view_key(view, page_json_key(name)))[1]
            except NotFound:
                return None
        else:
            return None
        try:
            files = json.loads(raw)["files"] if raw else []
        except (ValueError, KeyError):
            return None
        return next((f for f in files if f.get("filename") == filename), None)

    def _refuse(self, source: Source, got: str) -> None:
        """Mark the file refused on the kept upstream page, so that no form of the view lists
        it (``explain`` and the page for people say why) until upstream's page changes, and
        make the view's page again without it. Lost to a concurrent read of upstream's page,
        the mark is left to the next download, which checks the bytes again."""
        request = source.request
        what = "its .metadata" if source.metadata else "bytes"
        why = f"upstream served {what} whose SHA-256 is {got}, not {source.sha256} as its page says"
        key = view_upstream_key(request.view, request.project)
        try:
            info, raw = self.store.get(key)
            kept = Snapshot.from_json_bytes(raw)
        except (NotFound, ValueError, KeyError, TypeError):
            return
        base = request.filename.removesuffix(METADATA_SUFFIX)
        page = kept.page.refusing(base, why) if kept.page is not None else None
        if page is None:
            return
        try:
            self.store.put(key, replace(kept, page=page).to_json_bytes(), if_match=info.etag)
        except PreconditionFailed:
            return
        if self.store.head(view_key(request.view, page_json_key(request.project))) is not None:
            page_of = (request.view, request.project)
            self._note_due({page_of: self._remake(*page_of)})

    def _fill(self, source: Source, *, streamed: bool = False, **fetch: Any) -> bool:
        """Fetch ``source`` into the store at its key (create-only) if its bytes have its
        SHA-256; nothing is left behind otherwise. Whether this fill stored it."""
        with sink_for(self.store, source.key, streamed=streamed) as sink:
            got = self.upstream.file(source.url, sink, **fetch)
            if got != source.sha256:
                log.error(
                    "view %s: refused %s: its SHA-256 is %s, upstream's page says %s",
                    source.request.view,
                    source.url,
                    got,
                    source.sha256,
                )
                self._refuse(source, got)
                raise HashMismatch(
                    f"{source.url} does not match the SHA-256 its upstream page gives"
                )
            # another reader may have stored the same checked bytes first
            return sink.commit(source.sha256)


def _representations(
    policy: ViewPolicy, outcome: ViewOutcome, osv_etag: str, now: datetime
) -> dict[str, bytes]:
    """A view page's objects: its JSON (with what it made the page from, and what it left
    out and why, under ``_view``) and its HTML, rendered as the private pages are."""
    assert outcome.page is not None
    doc = outcome.page.to_json_doc()
    doc["_view"] = {
        "policy": _digest(policy),
        "osv": osv_etag,
        "fetched": format_time(now),
        "next-change": format_time(outcome.next_change) if outcome.next_change else None,
        "blocked": [v.to_json() for v in outcome.verdicts if not v.listed],
    }
    held = [v.held_back() for v in outcome.verdicts if not v.listed]
    html = render_project_html(outcome.page, held)
    body = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
    return {"html": html, "v1html": html, "json": body}


def _page_keys(view: str, name: str) -> Iterator[str]:
    for kind in PAGE_OBJECTS:
        key = view_key(view, page_key(name, kind))
        yield key
        yield gzip_key(key)


def _same_page(stored: bytes | None, made: bytes) -> bool:
    """Whether two JSON pages of a view differ at most in when they were made (the time, and
    the serial, which is the time in seconds)."""
    if stored is None:
        return False
    try:
        old, new = json.loads(stored), json.loads(made)
        for doc in (old, new):
            doc["_view"].pop("fetched", None)
            doc["meta"].pop("_last-serial", None)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return bool(old == new)


def _digest(policy: ViewPolicy) -> str:
    return hashlib.sha256(policy.to_json_bytes()).hexdigest()[:16]
