"""What ``skypi serve`` does to a folder before it opens its port: work proportional to what
changed since the index last saw it.

1. One walk of the folder and the state folder, ``lstat`` only (regular files; FIFOs, sockets,
   devices and symlinks are no objects), which also removes the temporary files of crashed
   writes.
2. Every file's ``(size, mtime_ns)`` is compared with the fingerprints recorded the last time the
   index was known to be consistent (``local/fingerprints.json`` in the state folder). Neither
   inode nor ctime is part of it, so a folder copied with ``cp -a`` or ``rsync -a`` (state
   folder included) is recognised without reading a file.
3. Only projects with a difference are checked: new, changed and vanished files go to the
   indexer (which confirms storage and reads archives to their end), a missing or altered
   ``.metadata`` file is made again from its wheel, and what follows a JSON page (its HTML
   twins, the gzip variants, the page for people) is written again when any of it is missing
   or no longer matches the page (a write cut short by a crash); then the root listing is made to
   agree with those projects.
4. The fingerprints of everything checked are recorded for the next start.

Without a record (the first start, an older skypi, a deleted state file) every project is
checked: that is adoption of a folder.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from packaging.utils import NormalizedName

from skypi.core.digests import sha256_hex
from skypi.core.errors import CorruptDocument, InvalidDistribution, reading
from skypi.core.keys import (
    FINGERPRINTS_KEY,
    LANDING_KEY,
    METADATA_SUFFIX,
    PACKAGES_PREFIX,
    ROOT_HTML_KEY,
    ROOT_JSON_KEY,
    SIMPLE_PREFIX,
    html_twins,
    metadata_key,
)
from skypi.core.pages import RootEntry, root_entry
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Change, Gone, Indexer, Landed, Outcome, project_of_key
from skypi.indexer.writer import Stored
from skypi.store.base import NotFound
from skypi.store.local import Fingerprint, LocalStore, package_etag

log = logging.getLogger("skypi.startup")
FORMAT = 1
ROOT = "(root)"
JUNK = ""  # files under the folder that are no distribution
BATCH = 5000  # changes indexed together: each page once, the root listing once a batch


@dataclass
class StartReport:
    """What a start-up pass found and did."""

    outcome: Outcome = field(default_factory=Outcome)
    files: int = 0
    projects_checked: int = 0
    temp_files_removed: int = 0
    metadata_rewritten: list[str] = field(default_factory=list)
    pages_rerendered: list[str] = field(default_factory=list)
    unreadable_pages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one line a person reads at start: what is served, what changed since the last
        run, and what was rewritten or cleaned up (only when something was).

        >>> StartReport(files=12).summary()
        'index ready: 12 files; no file added or removed'
        >>> report = StartReport(files=3, projects_checked=1, temp_files_removed=1)
        >>> report.outcome.added += ["a-1.0.tar.gz"]
        >>> report.pages_rerendered += ["simple/a/"]
        >>> report.summary()  # doctest: +NORMALIZE_WHITESPACE
        'index ready: 3 files; 1 new; read 1 project again; rewrote 1 page;
         removed 1 temporary file of a crashed write'
        """
        changes = [
            _count(len(self.outcome.added), "new", "new"),
            _count(len(self.outcome.removed), "gone", "gone"),
            _count(len(self.outcome.refused), "not indexed (logged above)", "not indexed"),
            _count(
                len(self.outcome.failed),
                "project failed (read again at the next start)",
                "projects failed (read again at the next start)",
            ),
        ]
        repairs = [
            _count(len(self.metadata_rewritten), ".metadata file", ".metadata files"),
            _count(len(self.pages_rerendered), "page", "pages"),
        ]
        parts = [_count(self.files, "file", "files", zero=True)]
        said = [c for c in changes if c]
        parts.append(", ".join(said) if said else "no file added or removed")
        if self.projects_checked:  # the work a start did: only projects whose files moved
            parts.append(f"read {_count(self.projects_checked, 'project', 'projects')} again")
        if any(repairs):
            parts.append("rewrote " + " and ".join(r for r in repairs if r))
        if self.temp_files_removed:
            parts.append(
                "removed "
                + _count(self.temp_files_removed, "temporary file", "temporary files")
                + " of a crashed write"
            )
        return "index ready: " + "; ".join(parts)

    def merge(self, other: StartReport) -> None:
        """Add a later pass's findings (the files it saw replace the count)."""
        self.outcome.merge(other.outcome)
        self.files = other.files
        self.projects_checked += other.projects_checked
        self.temp_files_removed += other.temp_files_removed
        self.metadata_rewritten += other.metadata_rewritten
        self.pages_rerendered += other.pages_rerendered
        self.unreadable_pages += other.unreadable_pages


def _count(number: int, one: str, many: str, *, zero: bool = False) -> str:
    if not number and not zero:
        return ""
    return f"{number} {one if number == 1 else many}"


def _load(store: LocalStore) -> tuple[dict[str, Fingerprint], dict[str, str]]:
    """The recorded fingerprints and the project of each recorded distribution key."""
    try:
        raw = store.get(FINGERPRINTS_KEY)[1]
        with reading("the fingerprints record"):
            doc = json.loads(raw)
            if doc.get("format") != FORMAT:
                return {}, {}
            files = doc["files"]
            return (
                {key: (int(v[0]), int(v[1])) for key, v in files.items()},
                {key: v[2] for key, v in files.items() if len(v) > 2},
            )
    except (NotFound, CorruptDocument):
        return {}, {}


def _project_of(key: str, known: dict[str, str]) -> str:
    if key.startswith(SIMPLE_PREFIX):
        parts = key.split("/")
        return parts[1] if len(parts) == 3 else ROOT
    if key.endswith(METADATA_SUFFIX):
        key = key[: -len(METADATA_SUFFIX)]
    if key in known:
        return known[key]
    try:
        return project_of_key(key).project
    except (InvalidDistribution, ValueError):
        return JUNK


def reconcile(
    store: LocalStore, indexer: Indexer, progress: Callable[[int], object] | None = None
) -> StartReport:
    report = StartReport()
    found, temps = store.scan()
    report.temp_files_removed = len(store.sweep(temps))
    current = {
        key: (st.st_size, st.st_mtime_ns)
        for key, _, st in found
        if key.startswith((PACKAGES_PREFIX, SIMPLE_PREFIX))
    }
    recorded, known = _load(store)
    projects: dict[str, str] = {}  # distribution key -> project
    by_project: dict[str, list[str]] = defaultdict(list)
    for key in current:
        if key.startswith(PACKAGES_PREFIX) and not key.endswith(METADATA_SUFFIX):
            project = known.get(key)
            if project is None:
                project = _project_of(key, known)
            projects[key] = project
            by_project[project].append(key)
    report.files = len(projects)
    changed = [key for key, fingerprint in current.items() if recorded.get(key) != fingerprint]
    changed += [key for key in recorded if key not in current]
    dirty = {_project_of(key, known) for key in changed}
    for key in sorted(by_project.get(JUNK, [])):
        if key not in recorded or recorded[key] != current[key]:
            report.outcome.skipped.append((key, "not a distribution"))
    dirty.discard(JUNK)
    checked_root = ROOT in dirty or ROOT_JSON_KEY not in current
    dirty.discard(ROOT)
    if checked_root:  # before any project's update of it, which reads it
        _readable_root(indexer)
    shown = _check_projects(store, indexer, sorted(dirty), by_project, current, recorded, report)
    if progress:
        for project in sorted(dirty):
            progress(max(1, len(by_project.get(project, []))))
    if shown or checked_root:
        _check_root(indexer, shown, report)
    failed = set(report.outcome.failed)
    if dirty or checked_root or recorded.keys() != current.keys():
        _record(store, projects, dirty | ({ROOT} if checked_root else set()), current, failed)
    if report.outcome.failed:  # a fault of storage, not of a file: the start is incomplete
        raise next(iter(report.outcome.failed.values()))  # the rest is indexed and recorded
    return report


def _check_projects(
    store: LocalStore,
    indexer: Indexer,
    dirty: list[str],
    by_project: dict[str, list[str]],
    current: dict[str, Fingerprint],
    recorded: dict[str, Fingerprint],
    report: StartReport,
) -> dict[NormalizedName, RootEntry]:
    """Bring the dirty projects' pages, ``.metadata`` files and followers in line with the
    folder, in batches (each page written once, the root listing once a batch); returns what
    each should show in the root listing (display name or None, summary)."""
    shown: dict[NormalizedName, RootEntry] = {}
    batch: list[Change] = []
    pending: list[NormalizedName] = []

    def flush() -> None:
        # isolated: a project whose indexing raises is reported, and the start goes on
        outcome = indexer.apply(batch, isolate=True) if batch else Outcome()
        report.outcome.merge(outcome)
        written = set(outcome.written)
        for name in pending:
            if name in outcome.failed:  # looked at again at the next start
                continue
            if name in written:  # indexed just now, with its followers
                shown[name] = outcome.shown[name]
                continue
            state = indexer.pages.read(name)
            if state.page is None or state.etag is None:
                continue
            _repair(store, indexer, state, current, recorded, report)  # kept: check followers
            shown[name] = root_entry(state.page)
        batch.clear()
        pending.clear()

    for project in dirty:
        name = NormalizedName(project)
        report.projects_checked += 1
        try:
            state = indexer.pages.read(name)
        except CorruptDocument:
            log.warning("the page of %s cannot be read; run `skypi reindex` to rebuild it", name)
            report.unreadable_pages.append(name)
            continue
        entries = {f.key: f for f in state.page.files} if state.page else {}
        changes: list[Change] = [
            Landed(key, page=state)
            for key in sorted(by_project.get(project, []))
            if key not in entries or entries[key].etag != package_etag(current[key])
        ]
        changes += [Gone(key) for key in sorted(entries) if key not in current]
        batch += changes
        pending.append(name)
        if len(batch) >= BATCH:
            flush()
    flush()
    return shown


def _repair(
    store: LocalStore,
    indexer: Indexer,
    state: Stored,
    current: dict[str, Fingerprint],
    recorded: dict[str, Fingerprint],
    report: StartReport,
) -> None:
    """A kept page's ``.metadata`` files, made again where missing or altered, and its
    followers, written again where any is missing, stale or altered (a write cut short by a
    crash, an older skypi's folder, a hand edit)."""
    page, etag, body = state.page, state.etag, state.body
    if page is None or etag is None or body is None:
        return
    for entry in page.files:
        if not entry.metadata_sha256:
            continue
        key = metadata_key(entry.key)
        if key in current and current[key] == recorded.get(key):
            continue
        try:
            intact = sha256_hex(store.get(key)[1]) == entry.metadata_sha256
        except (NotFound, OSError):
            intact = False
        info = None if intact else store.head(entry.key)
        if info is not None:
            try:
                indexer.write_metadata(indexer.inspect(info, entry.sha256))
                report.metadata_rewritten.append(key)
                log.info("made %s again", key)
            except (InvalidDistribution, NotFound, OSError) as exc:
                log.warning("cannot make %s again: %s", key, exc)
    stale = [key for key, _ in indexer.pages.stale_followers(page, body)]
    if stale:
        indexer.pages.follow(page, etag, body=body)
        report.pages_rerendered += [k for k in stale if k.endswith(("html", "v1html"))]


def _readable_root(indexer: Indexer) -> None:
    """A root listing that cannot be read (cut short, garbage) is written again from the
    project pages, as ``skypi reindex`` does; one whose followers are damaged is said so
    (:func:`_check_root` writes them again)."""
    try:
        root, etag = indexer.pages.read_root()
    except CorruptDocument:
        log.warning("the root listing cannot be read: writing it again from the project pages")
        Rebuilder(indexer).root_from_pages()
        return
    if etag is not None:
        body = indexer.pages.stored(ROOT_JSON_KEY)
        for key, problem in indexer.pages.stale_root_followers(root, body):
            log.warning("%s %s: writing it again from the root listing", key, problem)


def _check_root(
    indexer: Indexer, shown: dict[NormalizedName, RootEntry], report: StartReport
) -> None:
    try:
        root, etag = indexer.pages.read_root()
    except CorruptDocument:
        log.warning("the root listing cannot be read; run `skypi reindex` to rebuild it")
        report.unreadable_pages.append(ROOT)
        return
    body = indexer.pages.stored(ROOT_JSON_KEY)
    stale = etag is None or bool(indexer.pages.stale_root_followers(root, body))
    after = indexer.pages.update_root(shown, force=stale)
    if stale:
        report.pages_rerendered += list(html_twins(ROOT_HTML_KEY))
    # Its count, whether or not the listing changed now: a start stopped after the listing's
    # swap (a full disk, killed) finds the listing right and the landing page behind.
    missing = indexer.store.head(LANDING_KEY) is None
    indexer.pages.update_landing(listing=after or root, force=missing)


def _record(
    store: LocalStore,
    projects: dict[str, str],
    checked: set[str],
    current: dict[str, Fingerprint],
    failed: Collection[str] = (),
) -> None:
    """Record fingerprints: those of checked projects as they are now (after any repair), the
    others' as the walk found them (they were trusted, and nothing here wrote to them); none
    for projects whose indexing failed, so the next start looks at them again."""
    now = current
    if checked:
        found, _ = store.scan()
        now = {key: (st.st_size, st.st_mtime_ns) for key, _, st in found}
    files: dict[str, list[object]] = {}
    for key in now.keys() | current.keys():
        if not key.startswith((PACKAGES_PREFIX, SIMPLE_PREFIX)):
            continue
        project = _project_of(key, projects)
        if project in failed:
            continue
        source = now if project in checked else current
        if key in source:
            files[key] = [*source[key], *([projects[key]] if key in projects else [])]
    body = json.dumps({"format": FORMAT, "files": files}, separators=(",", ":")).encode()
    store.put(FINGERPRINTS_KEY, body)


def record_all(store: LocalStore, failed: Collection[str] = ()) -> None:
    """Record every file's fingerprint as it is now, after a pass that made every page agree
    with the folder (``skypi reindex``): the next start then trusts them (one walk) instead of
    reading every project's page and followers again because each page was written anew."""
    found, _ = store.scan()
    current = {
        key: (st.st_size, st.st_mtime_ns)
        for key, _, st in found
        if key.startswith((PACKAGES_PREFIX, SIMPLE_PREFIX))
    }
    projects = {
        key: _project_of(key, {})
        for key in current
        if key.startswith(PACKAGES_PREFIX) and not key.endswith(METADATA_SUFFIX)
    }
    _record(store, projects, set(), current, failed)


__all__ = ["FINGERPRINTS_KEY", "StartReport", "reconcile", "record_all"]
