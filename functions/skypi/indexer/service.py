"""The indexer: turns changes in ``packages/`` into pages, safely under concurrency.

- Storage is the truth: a "landed" key that is gone, or a "gone" key that is there, changes
  nothing, so events may repeat and arrive in any order. A change whose caller stored the very
  bytes and read them (an upload) carries what it learnt, and storage is not asked again.
- Whether a file joins its page is decided by :func:`skypi.core.admission.decide`, at the
  final swap of the page, so two writers racing for one filename cannot both win.
- Every page is written by the :class:`~skypi.indexer.writer.PageWriter` (compare-and-swap,
  followers from the render just made).
- Work is proportional to the change and batched: a batch writes each project's page once,
  the root listing once (only if a project appeared, left or changed its summary) and the
  landing page once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from skypi.core.admission import Decision, Verdict
from skypi.core.constants import DEFAULT_ROOT_DELAY_SECONDS
from skypi.core.digests import hash_stream, sha256_hex
from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import DistFilename, same_version
from skypi.core.keys import metadata_key
from skypi.core.landing import Upload
from skypi.core.metadata import (
    DEFAULT_LIMITS,
    Limits,
    read_file_metadata,
    read_metadata,
)
from skypi.core.namespaces import Namespaces
from skypi.core.pages import (
    FileEntry,
    ProjectPage,
    ProjectStatus,
    RootEntry,
    RootListing,
    root_entry,
)
from skypi.core.plan import (
    Edit,
    Facts,
    Mark,
    Observed,
    Plan,
    Refresh,
    Seen,
    SetStatus,
    facts_of,
    plan,
    seen_again,
    take_over,
)
from skypi.core.release import Release
from skypi.indexer.changes import Change as Change
from skypi.indexer.changes import Gone as Gone
from skypi.indexer.changes import Landed as Landed
from skypi.indexer.changes import project_of_key as project_of_key
from skypi.indexer.deferred import DeferredRoot, RootRebuilds
from skypi.indexer.writer import PageWriter, RootChange, Stored, Written
from skypi.store.base import Located, NotFound, ObjectInfo, PreconditionFailed, Store, Versioned
from skypi.store.namespaces import NamespaceRepository

if TYPE_CHECKING:  # botocore is not needed to index a folder (`skypi serve`, no aws extra)
    from skypi.indexer.views import Views
    from skypi.store.cdn import Cdn

log = logging.getLogger("skypi.indexer")
UPLOADS_REMEMBERED = 1024  # uploads whose storage event may still come (:meth:`Indexer.echo`)
# A file up to this size is read whole, once (one request), instead of in ranges for its
# metadata and then again to hash it.
WHOLE_READ_BYTES = 8 * 1024 * 1024
# How many times one batch looks at storage again after writing a project's page, when a
# file it listed was deleted (or one it unlisted came back) meanwhile: each pass is a
# compare-and-swap like any other, so the last writer to look always leaves page and
# storage agreeing; this only bounds the work of one batch under continuous churn.
SETTLE_PASSES = 3


@dataclass
class Outcome:
    """What one ``apply`` did; files not listed are reported, never raised."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # the files that were not listed, by key: each one's decision (conflict, refused, a copy)
    problems: dict[str, Decision] = field(default_factory=dict)
    # projects whose indexing raised (only with ``apply(..., isolate=True)``), and why
    failed: dict[str, BaseException] = field(default_factory=dict)
    failed_keys: list[str] = field(default_factory=list)  # the keys of their changes
    projects: list[str] = field(default_factory=list)  # every project the changes touched
    written: list[str] = field(default_factory=list)  # projects whose page was written
    shown: dict[str, RootEntry] = field(default_factory=dict)  # how the root listing shows them

    def merge(self, other: Outcome) -> None:
        self.added += other.added
        self.removed += other.removed
        self.skipped += other.skipped
        self.problems.update(other.problems)
        self.failed.update(other.failed)
        self.failed_keys += other.failed_keys
        self.projects += other.projects
        self.written += other.written
        self.shown.update(other.shown)

    def _listed(self, verdicts: Collection[Verdict]) -> list[tuple[str, str]]:
        return [(k, d.message) for k, d in self.problems.items() if d.verdict in verdicts]

    @property
    def conflicts(self) -> list[tuple[str, str]]:
        """(key, why) of each file whose name is listed with other bytes."""
        return self._listed({Verdict.CONFLICT})

    @property
    def duplicates(self) -> list[tuple[str, str]]:
        """(key, why) of each second copy of listed bytes, under another key."""
        return self._listed({Verdict.DUPLICATE})

    @property
    def refused(self) -> list[tuple[str, str]]:
        """(key, why) of each file refused: unreadable, or against the upload rules."""
        return self._listed({Verdict.INVALID, Verdict.ONE_SDIST, Verdict.CLOSED, Verdict.RESERVED})

    def problem(self, key: str) -> Decision | None:
        """Why ``key`` was not listed (a duplicate is listed, from its first key), if so."""
        found = self.problems.get(key)
        return found if found is not None and found.verdict is not Verdict.DUPLICATE else None


@dataclass
class _Project:
    """What indexing one project did, for the batch to finish: the root listing and the
    landing page are updated once for all projects."""

    outcome: Outcome
    root: RootEntry | None = None  # if it changed
    seen: str | None = None  # the ETag of the page ``root`` was taken from
    followed: bool = False  # what follows the page was written (by this batch)
    replayed: bool = False  # a change seen again: its first run may have stopped part-way
    uploads: list[Upload] = field(default_factory=list)
    # what this batch's page write itself changed, checked against storage once written
    listed: list[FileEntry] = field(default_factory=list)
    unlisted: list[FileEntry] = field(default_factory=list)

    def absorb(self, later: _Project) -> None:
        """Fold in a later pass over the same project (storage moved under this one)."""
        self.outcome.merge(later.outcome)
        gone = set(later.outcome.removed)
        self.uploads = [u for u in self.uploads if u.filename not in gone] + later.uploads
        if later.root is not None:
            self.root, self.seen = later.root, later.seen
        self.followed = self.followed or later.followed
        self.replayed = self.replayed or later.replayed
        self.listed, self.unlisted = later.listed, later.unlisted


@dataclass
class _Seen:
    """One project's changes as found in storage, against its page as read (``current``)."""

    current: dict[str, FileEntry]
    outcome: Outcome = field(default_factory=Outcome)
    arrivals: list[Facts] = field(default_factory=list)  # keys the page does not list, read
    uploads: set[str] = field(default_factory=set)  # keys that arrived as uploads
    departures: dict[str, str | None] = field(default_factory=dict)  # key -> ETag checked gone
    refreshed: dict[str, Refresh] = field(default_factory=dict)  # key -> (ETag, provenance)
    replayed: bool = False  # a change the page already shows (listed, or unlisted)

    def read_by_caller(self, facts: Facts) -> None:
        """A file its caller stored and read (an upload): new, or listed meanwhile."""
        known = self.current.get(facts.entry.key)
        if known is None:
            self.arrivals.append(facts)
        elif known.sha256 == facts.entry.sha256:  # listed already (by a watcher)
            update = (facts.entry.etag, known.provenance or facts.entry.provenance)
            if update != (known.etag, known.provenance):
                self.refreshed[facts.entry.key] = update


class HashTimeout(InvalidDistribution):
    """A file with no whole-object SHA-256 in storage, too big to hash in the time allowed."""


def _shown_alike(before: ProjectPage | None, after: ProjectPage | None) -> bool:
    """Whether the root listing shows ``after`` exactly as it shows ``before``."""
    return root_entry(before) == root_entry(after)


class Indexer:
    """Applies changes to one store's pages."""

    def __init__(
        self,
        store: Store,
        limits: Limits = DEFAULT_LIMITS,
        cdn: Cdn | None = None,
        workers: int = 1,
        index_url: str | None = None,
        rebuilds: RootRebuilds | None = None,
        root_delay: int = DEFAULT_ROOT_DELAY_SECONDS,
    ) -> None:
        self.store = store
        # Projects of one batch indexed at once: worth it where each request waits on the
        # network (S3); on a local disk, threads only contend for its locks.
        self.workers = workers
        self.limits = limits
        self.cdn = cdn  # told to drop files deleted or restored, which it caches for a year
        # index_url: written into the pages for people (their setup lines)
        # A name published here takes over what the views had stored of it from upstream.
        self.pages = PageWriter(
            store,
            describer=self._describe_stored,
            index_url=index_url,
            created=lambda project: self.views.yield_to_private(project),
        )
        self._views: Views | None = None
        # Given where to ask for a rebuild (AWS: the indexer's queue), a batch that changes
        # the root listing records the change as pending, and one rebuild per ``root_delay``
        # seconds merges them all (skypi.indexer.deferred); without, the listing is written
        # by the batch itself (a folder: its bytes cost nothing per request, and a dropped
        # file is listed at once).
        self.deferred = DeferredRoot(self.pages, rebuilds, root_delay) if rebuilds else None
        self.namespaces = NamespaceRepository(store)  # PEP 752: read when a project starts
        # time.monotonic() past which no file is hashed further (a Lambda's time runs out:
        # better a clear refusal than a timeout retried into the dead-letter queue)
        self.hash_deadline: float | None = None
        # key -> ETag of each file this process uploaded and listed, with what follows its
        # page: the storage event its write causes is an echo (:meth:`echo`)
        self._uploaded: OrderedDict[str, str] = OrderedDict()
        self._uploaded_lock = threading.Lock()

    @property
    def views(self) -> Views:
        """The index's views, built (and their modules imported) the first time a project
        starts: an API Lambda's cold start imports nothing that only views need."""
        if self._views is None:
            from skypi.indexer.views import Views  # the views' modules, once needed

            self._views = Views(self.store)
        return self._views

    def where(self, key: str) -> str:
        """Where someone finds ``key``: its path in a folder, else the key itself."""
        return str(self.store.path_for(key)) if isinstance(self.store, Located) else key

    # -- applying changes ----------------------------------------------------------------

    def apply(
        self,
        changes: Iterable[Change],
        *,
        isolate: bool = False,
        progress: Callable[[int], object] | None = None,
    ) -> Outcome:
        """Index a batch of changes: each project's page written once, then the root listing
        and the landing page once. With ``isolate``, a project whose indexing raises is
        reported in ``failed`` and the others are still indexed. ``progress`` is told the
        number of changes of each project done."""
        outcome = Outcome()
        by_project = _by_project(changes, outcome)
        root: dict[NormalizedName, RootEntry] = {}
        seen: dict[NormalizedName, str] = {}
        uploads: list[Upload] = []
        gone: list[tuple[NormalizedName, str]] = []  # (project, filename) left the index

        def one(item: tuple[NormalizedName, list[Change]]) -> _Project | BaseException:
            project, project_changes = item
            try:
                done = self._apply_project(project, project_changes)
                self._remember_uploads(project_changes, done)
                return done
            except Exception as exc:
                if not isolate:
                    raise
                log.exception("indexing %s failed", project)
                return exc
            finally:
                if progress is not None:
                    progress(len(project_changes))

        items = list(by_project.items())
        if self.workers > 1 and len(items) > 1:  # projects are independent: overlap their I/O
            with ThreadPoolExecutor(self.workers, thread_name_prefix="skypi-index") as pool:
                results = list(pool.map(one, items))
        else:
            results = [one(item) for item in items]
        for (project, _), done in zip(items, results, strict=True):
            if isinstance(done, BaseException):
                outcome.failed[project] = done
                outcome.failed_keys += [change.key for change in by_project[project]]
                continue
            outcome.merge(done.outcome)
            if done.root is not None:
                root[project] = done.root
            if done.seen is not None:
                seen[project] = done.seen
            uploads += done.uploads
            gone += [(project, filename) for filename in done.outcome.removed]
        settle = any(not isinstance(done, BaseException) and done.replayed for done in results)
        self.finish(root, uploads, seen, gone=gone, settle=settle)
        return outcome

    def finish(
        self,
        root: RootChange,
        uploads: list[Upload],
        seen: Mapping[NormalizedName, str] | None = None,
        *,
        gone: Sequence[tuple[NormalizedName, str]] = (),
        settle: bool = False,
    ) -> None:
        """The batch's one update of the root listing and of the landing page (``seen``: the
        ETag of each page ``root`` was taken from; ``gone``: files that left the index, which
        leave its last uploads too). ``settle``: the batch saw a change again (a retry, a
        redelivered event), whose first run may have stopped after the listing's swap: what
        follows the listing, the landing page's count with it, is written unless it was."""

        def landing(listing: RootListing | None) -> None:
            if uploads or listing is not None or gone:
                self.pages.update_landing(uploads, listing, gone=gone)

        if self.deferred is not None:
            if root and not self.pages.root_shows(root):
                self.deferred.defer(root, seen)  # the rebuild updates the landing page's count
            landing(None)
            return
        listing = self.pages.update_root(root, seen=seen, then=landing) if root else None
        if listing is None and settle:
            listing = self.pages.settle_root(then=landing)
        if listing is None:
            landing(None)

    def rebuild_root(self) -> RootListing | None:
        """Merge the root listing's pending changes (a rebuild asked for by a batch); the
        listing written, if one was."""
        if self.deferred is None:
            return None

        def landing(listing: RootListing) -> None:
            self.pages.update_landing(listing=listing)

        return self.deferred.rebuild(then=landing)

    def _apply_project(self, project: NormalizedName, changes: list[Change]) -> _Project:
        """Index one project's changes, then confirm the page's own changes against storage.

        A file can leave storage between the look that admitted it and the page write (an
        admin delete, or ``rm``, of a file another writer listed meanwhile): a page must never
        list bytes that are not stored (invariant 10). So whatever the write listed is looked
        at again once it is written, and whatever it unlisted too; a deletion after that look
        is followed by its own event, which then sees the entry and removes it."""
        done = self._index_project(project, changes)
        for _ in range(SETTLE_PASSES):
            again = self._unsettled(project, done)
            if not again:
                break
            done.absorb(self._index_project(project, again))
        return done

    def _remember_uploads(self, changes: list[Change], done: _Project) -> None:
        uploaded = {c.key for c in changes if isinstance(c, Landed) and c.upload}
        with self._uploaded_lock:
            for entry in done.listed:
                if entry.key in uploaded:
                    self._uploaded[entry.key] = entry.etag
                    self._uploaded.move_to_end(entry.key)
            while len(self._uploaded) > UPLOADS_REMEMBERED:
                self._uploaded.popitem(last=False)

    def echo(self, key: str) -> bool:
        """Whether ``key`` holds the very file this process uploaded and listed, its page and
        what follows written: the event its write caused (a folder watcher's) needs no look.
        Once per upload: a later event of that key is looked at as any other."""
        with self._uploaded_lock:
            etag = self._uploaded.pop(key, None)
        if etag is None:
            return False
        try:
            info = self.store.head(key)
        except OSError:
            return False
        return info is not None and info.etag == etag

    def _unsettled(self, project: NormalizedName, done: _Project) -> list[Change]:
        """The changes that storage made under the page write just done."""
        again: list[Change] = []
        for entry in done.listed:
            if not self.is_stored(entry.key, unknown=True):
                log.warning("%s left storage while it was being listed", entry.key)
                again.append(Gone(entry.key))
        for entry in done.unlisted:
            try:
                info = self.store.head(entry.key)
            except OSError:  # cannot be looked at: nothing to list again
                info = None
            if info is not None:
                log.warning("%s came back to storage while it was being unlisted", entry.key)
                self._rederive_metadata(info)
                again.append(Landed(entry.key))
        return again

    def is_stored(self, key: str, *, unknown: bool) -> bool:
        """Whether ``key`` is in storage; ``unknown`` when it cannot be looked at."""
        try:
            return self.store.head(key) is not None
        except OSError as exc:
            log.warning("cannot look at %s: %s", key, exc)
            return unknown

    def _rederive_metadata(self, info: ObjectInfo) -> None:
        """Write a returned file's ``.metadata`` again from its bytes: the one just removed
        may have been its own (same name, same metadata), and the page may list it already."""
        try:
            facts = self.inspect(info)
        except (InvalidDistribution, NotFound, OSError) as exc:
            log.warning("cannot read %s: %s", info.key, exc)
            return
        if facts.metadata_file is not None:
            self.write_metadata(facts)

    def _index_project(self, project: NormalizedName, changes: list[Change]) -> _Project:
        """Observe what the changes are in storage, then plan and write the page: the plan
        (:func:`skypi.core.plan.plan`) is made inside the page's compare-and-swap."""
        start = next((c.page for c in changes if isinstance(c, Landed) and c.page), None)
        state = start if start is not None else self.pages.read(project)
        seen = self._observe(changes, state.page)
        for key, raw in filter(None, (facts.metadata_file for facts in seen.arrivals)):
            self.store.put(key, raw)  # before the page lists the wheel (PEP 658)
        observed = Observed.of(seen.arrivals, seen.uploads, seen.departures, seen.refreshed)
        done = _Project(seen.outcome, replayed=seen.replayed)
        if observed.changes(state.page):
            self._update_page(project, state, seen.arrivals, observed, done)
        if seen.uploads and project not in done.outcome.written and not done.followed:
            # Listed already by another writer (a watcher, the upload's own storage event),
            # which may not have written what follows the page yet: the uploader is answered
            # only once the HTML and the page for people list the file too.
            now = self.pages.read(project)
            listed_keys = {f.key for f in now.page.files} if now.page else set()
            if now.page is not None and now.etag is not None and seen.uploads & listed_keys:
                self.pages.follow(now.page, now.etag, body=now.body)
        if seen.replayed and project not in done.outcome.written and not done.followed:
            self._finish_listing(state, done)
        for entry in done.unlisted:
            self.drop_metadata(entry)
        listed = {f.key for f in state.page.files} if state.page else set()
        if self.cdn is not None and seen.departures.keys() & listed:
            self.cdn.invalidate(sorted(seen.departures.keys() & listed))
        return done

    def _observe(self, changes: list[Change], page: ProjectPage | None) -> _Seen:
        """What each change is in storage now, against the page as read."""
        seen = _Seen({f.key: f for f in page.files} if page else {})
        for change in changes:
            if isinstance(change, Landed) and change.upload:
                seen.uploads.add(change.key)
            if isinstance(change, Landed) and change.facts is not None:
                seen.read_by_caller(change.facts)  # stored and read: nothing to confirm
                continue
            try:
                info = self.store.head(change.key)
            except OSError as exc:  # there, but not readable: neither listed nor unlisted
                log.warning("cannot look at %s: %s", change.key, exc)
                seen.outcome.skipped.append((change.key, str(exc)))
                continue
            if info is None:  # gone, whatever the event said: unlist the entry that was checked
                known = seen.current.get(change.key)
                seen.departures[change.key] = known.etag if known is not None else None
                # unlisted already: by a run that may have stopped after its swap (a delete's
                # followers failed), so it is finished as a replayed upload's is
                seen.replayed = seen.replayed or known is None
            elif isinstance(change, Gone):
                seen.outcome.skipped.append((change.key, "still in storage"))
            elif change.key in seen.current:
                self._seen_again(info, seen.current[change.key], seen)
            else:
                self._arrived(info, change, seen)
        return seen

    def _seen_again(self, info: ObjectInfo, known: FileEntry, seen: _Seen) -> None:
        """A listed key found in storage: a replay, a copy of its bytes, or an overwrite."""
        try:
            sha256 = None if known.etag == info.etag else self._stored_sha256(info)
        except (InvalidDistribution, NotFound, OSError) as exc:
            log.warning("cannot read %s: %s", info.key, exc)
            seen.outcome.skipped.append((info.key, str(exc)))
            return
        found = seen_again(known, info.etag, sha256)
        if found is Seen.REPLAY:
            seen.replayed = True  # already indexed at this version
        elif found is Seen.COPY:
            seen.refreshed[info.key] = (info.etag, known.provenance)
        else:
            self._overwritten(info, known, seen)

    def _overwritten(self, info: ObjectInfo, known: FileEntry, seen: _Seen) -> None:
        """A listed file replaced in place: the original put back, or the stored bytes listed
        in the same page write (:meth:`replaced`)."""
        try:
            taken, message = self.replaced(info, known)
        except (InvalidDistribution, NotFound, OSError) as exc:
            log.warning("cannot read %s: %s", info.key, exc)
            seen.outcome.skipped.append((info.key, str(exc)))
            return
        if taken is None:  # the original is back
            log.error("conflict: %s", message)
            seen.outcome.problems[info.key] = Decision(Verdict.CONFLICT, message, known)
        else:  # the entry checked gives way to the stored bytes, in one page write
            log.warning("%s", message)
            seen.departures[info.key] = known.etag
            seen.arrivals.append(taken)

    def _arrived(self, info: ObjectInfo, change: Landed, seen: _Seen) -> None:
        """A key the page does not list: read what its file says."""
        try:
            seen.arrivals.append(self._inspect(info, change.dist, change.sha256))
        except (InvalidDistribution, NotFound, OSError) as exc:
            # set aside: not listed, and the rest of the batch goes on
            log.warning("set aside %s (not indexed): %s", self.where(info.key), exc)
            seen.outcome.problems[info.key] = Decision(Verdict.INVALID, str(exc))

    def _describe_planned(
        self, planned: Plan, arrivals: list[Facts], described: dict[str, Release]
    ) -> None:
        """Render the description of the release the plan names as the newest, by version,
        once however many times a lost race plans again (a stored write answered 412 plans
        nothing the second time: what follows the page still shows the first plan's)."""
        facts = next((f for f in arrivals if f.entry.key == planned.describe), None)
        if facts is not None and facts.entry.version not in described:
            described[facts.entry.version] = self.describe(facts)

    def _finish_listing(self, state: Stored, done: _Project) -> None:
        """A change seen again that the page lists already: the run that listed it may have
        stopped after the page's swap (killed, or a storage fault), so what follows the page
        is written unless it was, and the root listing is put right unless it is (a retry,
        a redelivered event or the next start-up finishes the work)."""
        if state.page is None or state.etag is None:
            return
        done.followed = self.pages.catch_up(state) or done.followed
        if done.root is None:
            done.root, done.seen = root_entry(state.page), state.etag

    def _update_page(
        self,
        project: NormalizedName,
        state: Stored,
        arrivals: list[Facts],
        observed: Observed,
        done: _Project,
    ) -> None:
        planned: list[Plan] = []  # the last attempt's plan (the one written)
        reserved: list[Namespaces] = []  # read once, if the project starts here (PEP 752)
        described: dict[str, Release] = {}  # version -> the release a plan named, rendered

        def change(page: ProjectPage | None) -> ProjectPage | None:
            if page is None and observed.arrivals and not reserved:
                reserved.append(self.namespaces.all())
            namespaces = reserved[0] if reserved else None
            planned[:] = [plan(page, replace(observed, namespaces=namespaces))]
            self._describe_planned(planned[0], arrivals, described)
            return planned[0].page

        written = self.pages.update(project, change, start=state, releases=described)
        self._report(project, written, arrivals, planned[0], done)
        if written is None:
            # Nothing to write: the page says it all already. Whoever wrote it shows it in
            # the root listing, unless that was this very write, stored but answered 412 (a
            # reply lost, the request sent again): then the listing is still this one's to do.
            # So is what follows the page, if it lists one of these very files.
            now = self.pages.read(project)
            if now.page is None or now.etag is None:
                return
            if not _shown_alike(state.page, now.page):
                done.root, done.seen = root_entry(now.page), now.etag
            before = {f.key for f in state.page.files} if state.page else set()
            listed = {f.key for f in now.page.files} - before
            if listed & {f.entry.key for f in arrivals}:
                self.pages.follow(now.page, now.etag, described, now.body)
                done.followed = True
            return
        self._written(project, written, arrivals, described, done)

    def _written(
        self,
        project: NormalizedName,
        written: Written,
        arrivals: list[Facts],
        described: dict[str, Release],
        done: _Project,
    ) -> None:
        """What a page write leaves to do: the root listing, the descriptions of releases
        listed, and what to look at again in storage."""
        done.outcome.written.append(project)
        done.outcome.shown[project] = root_entry(written.after)
        before_entries = {f.key: f for f in written.before.files} if written.before else {}
        after_entries = {f.key: f for f in written.after.files}
        done.listed = [f for k, f in after_entries.items() if before_entries.get(k) != f]
        done.unlisted = [f for k, f in before_entries.items() if k not in after_entries]
        listed = {f.filename for f in written.after.files}
        for version, release in described.items():
            if any(f.entry.version == version and f.entry.filename in listed for f in arrivals):
                self.pages.add_release(project, release)  # only for files that were listed
        if not _shown_alike(written.before, written.after):
            done.root, done.seen = done.outcome.shown[project], written.etag

    def _report(
        self,
        project: NormalizedName,
        written: Written | None,
        arrivals: list[Facts],
        planned: Plan,
        done: _Project,
    ) -> None:
        before = {f.filename for f in written.before.files} if written and written.before else set()
        after = written.after if written else None
        for facts in arrivals:
            entry = facts.entry
            decision = planned.decision(entry.key)
            if decision.verdict is Verdict.ADMIT and after is not None:
                done.outcome.added.append(entry.filename)
                done.uploads.append(
                    Upload(
                        project,
                        after.display_name,
                        entry.version,
                        entry.filename,
                        entry.upload_time,
                    )
                )
                log.info("indexed %s", entry.filename)
            elif decision.refused:
                done.outcome.problems[entry.key] = decision
                self._orphan(facts)
                _log_problem(entry.key, decision)
        if written is not None:
            names = {f.filename for f in written.after.files}
            done.outcome.removed += sorted(before - names)
            for name in sorted(before - names):
                log.info("removed %s", name)

    def _orphan(self, facts: Facts) -> None:
        """A refused file's ``.metadata`` (written before the page) goes again, unless the
        listed file of that name is the one stored under this very key."""
        if facts.metadata_file is not None:
            self.store.delete(facts.metadata_file[0])

    # -- inspecting files -----------------------------------------------------------------

    def inspect(self, info: ObjectInfo, sha256: str | None = None) -> Facts:
        """Read a stored file's metadata (ranged reads) and digest: what its entry will say."""
        return self._inspect(info, project_of_key(info.key), sha256)

    def _inspect(self, info: ObjectInfo, dist: DistFilename, sha256: str | None) -> Facts:
        late = self.hash_deadline is not None and time.monotonic() > self.hash_deadline
        if info.size <= WHOLE_READ_BYTES and not late:  # one read: metadata and digest
            got, data = self.store.get(info.key)
            if got.etag != info.etag or len(data) != info.size:
                raise InvalidDistribution(
                    f"{info.key} changed while it was read (still being written?)"
                )
            meta = read_file_metadata(dist, io.BytesIO(data), info.size, self.limits)
            return facts_of(dist, meta, info, sha256 or info.sha256 or sha256_hex(data))
        read_at = lambda start, length: self.store.read_range(info.key, start, length)  # noqa: E731
        meta = read_metadata(
            dist, info.size, read_at, lambda: self.store.open(info.key), self.limits
        )
        digest = sha256 or info.sha256 or self.sha256_of(info.key, size=info.size)
        return facts_of(dist, meta, info, digest)

    def restore(self, key: str, known: FileEntry) -> bool:
        """Put back the version of ``key`` that ``known`` was indexed at, if storage keeps it."""
        if isinstance(self.store, Versioned) and self.store.restore_version(key, known.etag):
            if self.cdn is not None:  # an edge may have cached the overwriting bytes
                self.cdn.invalidate([key])
            return True
        return False

    def replaced(
        self, info: ObjectInfo, known: FileEntry, stored: Facts | None = None
    ) -> tuple[Facts | None, str]:
        """The one rule for a listed key whose stored bytes are no longer the listed ones (a
        file replaced in place), wherever it is seen (an event, the watcher, start-up,
        ``skypi reindex``): storage that keeps the listed version gets it back, so a hash pip
        has seen never changes (None, and what happened); storage that keeps none (a folder)
        is listed as it is, keeping what only the page knows (yanks, upload time), so that
        pip's hash check passes again: the facts to list, and what happened. Raises what
        :meth:`inspect` raises when the stored bytes cannot be read."""
        where = self.where(info.key)
        if self.restore(info.key, known):
            return None, (
                f"{where} was overwritten: it is listed with sha256 {known.sha256}, which the "
                "original, restored from its previous version, holds again"
            )
        facts = stored or self.inspect(info)
        entry = take_over(known, facts.entry)
        if self.cdn is not None:  # an edge caches the old bytes and their metadata for a year
            self.cdn.invalidate([info.key, metadata_key(info.key)])
        return Facts(facts.dist, facts.meta, entry), (
            f"{where} was overwritten: it was listed with sha256 {known.sha256}, which no "
            f"stored bytes match (the file holds {entry.sha256}); no earlier version exists, "
            "so the page now lists the stored file"
        )

    def sha256_of(self, key: str, deadline: float | None = None, *, size: int | None = None) -> str:
        """Hash a stored file; :class:`HashTimeout` if ``deadline`` (or :attr:`hash_deadline`)
        passes first, saying how far it got and how to publish the file instead. With
        ``size``, the file must hold exactly that many bytes: one that grows or shrinks while
        it is read is still being written, and is not indexed yet."""
        deadline = deadline if deadline is not None else self.hash_deadline
        started = time.monotonic()

        def in_time(done: int) -> None:
            if deadline is not None and time.monotonic() > deadline:
                elapsed = time.monotonic() - started
                raise HashTimeout(
                    f"{key} carries no SHA-256 checksum in storage, and hashing it ran out "
                    f"of time after {done:,} bytes in {elapsed:.0f} s "
                    f"({done / max(elapsed, 1e-6) / 1e6:.0f} MB/s). Publish it with "
                    "`skypi publish FILE`, or copy it with `aws s3 cp --checksum-algorithm "
                    "SHA256` in one part (files up to 5 GB; raise the CLI's "
                    "multipart_threshold), so that storage holds its SHA-256."
                )

        with self.store.open(key) as fh:
            done, found = hash_stream(fh, check=in_time)
        if size is not None and done != size:
            raise InvalidDistribution(f"{key} changed while it was read (still being written?)")
        return found["sha256"]

    def _stored_sha256(self, info: ObjectInfo) -> str | None:
        """The SHA-256 of a stored object's bytes; None if it is too big to hash in time."""
        try:
            return info.sha256 or self.sha256_of(info.key, size=info.size)
        except HashTimeout:
            return None

    def drop_metadata(self, entry: FileEntry) -> None:
        """Remove the ``.metadata`` of an entry just unlisted, only if it still holds that
        entry's metadata: a re-upload under the same key may have written its own already
        (it may hold the same bytes: then a later look at storage writes it again)."""
        if not entry.metadata_sha256:
            return
        key = metadata_key(entry.key)
        try:
            info, raw = self.store.get(key)
        except NotFound:
            return
        if sha256_hex(raw) != entry.metadata_sha256:
            return  # another file's, stored under that name since
        with contextlib.suppress(PreconditionFailed):  # replaced meanwhile: not ours
            self.store.delete(key, if_match=info.etag)

    def write_metadata(self, facts: Facts, *, unless_there: bool = False) -> None:
        """The PEP 658 file beside a wheel: derived from the file's bytes alone, so a write
        over one left by earlier bytes under the same key is right. ``unless_there``: read
        first, and write only if it differs (a rebuild, where most are right already)."""
        if facts.metadata_file is None:
            return
        key, raw = facts.metadata_file
        if unless_there:
            try:
                if self.store.get(key)[1] == raw:
                    return
            except NotFound:
                pass
        self.store.put(key, raw)

    def describe(self, facts: Facts) -> Release:
        """A release's summary and rendered description, from its first listed file."""
        meta = facts.meta
        problems: list[str] = []
        try:
            release = Release.from_metadata(facts.entry.version, meta.raw, problems)
        except Exception as exc:  # a sidebar field it cannot show: the file is indexed anyway
            log.warning("description of %s not rendered: %s", facts.entry.filename, exc)
            release = Release(facts.entry.version, " ".join(meta.summary.split()))
        for problem in problems:  # a hostile description never stops the file being indexed
            log.warning("%s: %s", facts.entry.filename, problem)
        return release

    def _describe_stored(self, page: ProjectPage, version: str) -> Release | None:
        """A release's description from the first of its stored files that can be read."""
        for entry in page.files:
            info = self.store.head(entry.key) if same_version(entry.version, version) else None
            if info is None:
                continue
            try:
                return self.describe(self.inspect(info, entry.sha256))
            except (InvalidDistribution, NotFound, OSError) as exc:
                log.warning("cannot describe %s %s from %s: %s", page.name, version, entry.key, exc)
        return None

    # -- page edits (admin actions) ---------------------------------------------------------

    def update_files(self, project: NormalizedName, mark: Mark) -> list[str]:
        """Yank or unyank the files ``mark`` names (the plan, at the page's swap): the
        filenames changed (none: none named, or all already so)."""
        written, planned = self._edit(project, mark, repair=True)  # no event follows an edit
        return list(planned.edited) if written is not None else []

    def set_status(
        self, project: NormalizedName, status: ProjectStatus, reason: str | None
    ) -> ProjectPage | None:
        """Set a project's PEP 792 status, as :func:`~skypi.core.pages.check_status` gives it
        (None: no such project; a status is written even when it is the same)."""
        written, _ = self._edit(project, SetStatus(status, reason))
        return written.after if written is not None else None

    def _edit(
        self, project: NormalizedName, edit: Edit, *, repair: bool = False
    ) -> tuple[Written | None, Plan]:
        """An admin's edit, planned (:func:`skypi.core.plan.plan`) against the page at each
        try of its compare-and-swap; the write and the last try's plan."""
        planned: list[Plan] = []

        def change(page: ProjectPage | None) -> ProjectPage | None:
            planned[:] = [plan(page, Observed(edit=edit))]
            return planned[0].page

        written = self.pages.update(project, change, repair=repair)
        return written, planned[0] if planned else plan(None, Observed(edit=edit))


def _by_project(changes: Iterable[Change], outcome: Outcome) -> dict[NormalizedName, list[Change]]:
    """The changes by project; a key that holds no distribution is reported skipped."""
    by_project: dict[NormalizedName, list[Change]] = defaultdict(list)
    for change in changes:
        try:
            project = change.dist.project
        except (InvalidDistribution, ValueError) as exc:
            log.info("skipping %s: %s", change.key, exc)
            outcome.skipped.append((change.key, str(exc)))
            continue
        by_project[project].append(change)
    outcome.projects = list(by_project)
    return by_project


def _log_problem(key: str, decision: Decision) -> None:
    if decision.verdict is Verdict.DUPLICATE:
        log.info("%s", decision.message)
    elif decision.verdict is Verdict.CONFLICT:
        log.error("conflict: %s", decision.message)
    else:
        log.warning("refusing %s: %s", key, decision.message)
