"""Whole-index passes: rebuild every page from what storage holds (repair, migration), or only
report how far the pages have drifted from it (``skypi reindex --check``).

Storage is the truth for which files exist and what they hold; the pages are the truth for
what storage cannot say (yanks, the first upload time). Files are not read again when the page
already knows them at their current ETag, unless ``verify_hashes`` asks for it.

Safe while uploads continue: every write is a compare-and-swap, and a rebuild re-checks
storage (HEAD) for any entry it would add or drop that the latest page disagrees on, so a file
that landed or left after the listing is neither lost nor resurrected.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from skypi.core.admission import Candidate, Mode, Verdict, decide_among
from skypi.core.errors import CorruptDocument, InvalidDistribution
from skypi.core.keys import (
    LANDING_KEY,
    METADATA_SUFFIX,
    PACKAGES_PREFIX,
    ROOT_JSON_KEY,
    SIMPLE_PREFIX,
    metadata_key,
    page_json_key,
    recognise,
)
from skypi.core.namespaces import Namespaces
from skypi.core.pages import (
    FileEntry,
    NamespaceEntries,
    ProjectPage,
    RootEntry,
    RootListing,
    root_entry,
)
from skypi.core.plan import Seen, restated, seen_again
from skypi.indexer.deferred import waiting
from skypi.indexer.service import Indexer, project_of_key
from skypi.indexer.writer import Stored
from skypi.store.base import EdgeWriteFailed, NotFound, ObjectInfo

if TYPE_CHECKING:
    from skypi.store.kvs import EdgeQuarantine

log = logging.getLogger("skypi.reindex")


@dataclass(frozen=True)
class Drift:
    """One way a page disagrees with storage."""

    project: str
    problem: str

    def __str__(self) -> str:
        return f"{self.project}: {self.problem}"


@dataclass
class Report:
    projects: int = 0
    files: int = 0
    drift: list[Drift] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # keys that are no distribution
    # distributions the index does not list, and why (a bad archive, a file that cannot be
    # read): not drift, since no page lists them, but listed so that someone removes them
    set_aside: list[tuple[str, str]] = field(default_factory=list)
    # projects that could not be checked (a storage fault, a bug), and why
    failed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    """What one project's page should hold, and what was wrong with the stored one."""

    page: ProjectPage | None  # None: the stored page is right (or there is none, nor files)
    root: RootEntry  # how the root listing shows it
    drift: list[Drift]
    set_aside: tuple[tuple[str, str], ...] = ()
    failed: str | None = None  # why the project could not be checked (its page is left alone)
    quarantined: bool = False  # PEP 792: the edge must refuse its files
    etag: str | None = None  # the page's as this run last saw it (None: not known)


def scan(indexer: Indexer) -> tuple[dict[NormalizedName, list[ObjectInfo]], set[str], Report]:
    """Distribution files by project, and the projects that have a page; streamed listings,
    holding keys only (never contents)."""
    report = Report()
    files: dict[NormalizedName, list[ObjectInfo]] = defaultdict(list)
    for info in indexer.store.list(PACKAGES_PREFIX):
        if info.key.endswith(METADATA_SUFFIX):
            continue
        try:
            files[project_of_key(info.key).project].append(info)
        except (InvalidDistribution, ValueError) as exc:
            report.skipped.append((info.key, str(exc)))
    return files, page_projects(indexer), report


def page_projects(indexer: Indexer) -> set[str]:
    """The projects that have a JSON page."""
    pages = set()
    for info in indexer.store.list(SIMPLE_PREFIX):
        found = recognise(info.key)
        if found and found.project and found.page_kind == "json" and not found.gzipped:
            pages.add(found.project)
    return pages


class Rebuilder:
    def __init__(
        self,
        indexer: Indexer,
        *,
        verify_hashes: bool = False,
        workers: int = 4,
        edge: EdgeQuarantine | None = None,
    ) -> None:
        self.indexer = indexer
        self.edge = edge  # the CloudFront edge's quarantine records, made to match the pages
        self.store = indexer.store
        self.verify_hashes = verify_hashes
        self.workers = workers
        self.reserved = Namespaces()

    def run(self, *, check: bool, progress: Callable[[int], object] | None = None) -> Report:
        """Compare every page with storage; unless ``check``, rewrite those that differ."""
        files, pages, report = scan(self.indexer)
        self.reserved = self.indexer.namespaces.all()  # PEP 752, as it stands for this run
        projects = sorted(set(files) | {NormalizedName(p) for p in pages})
        report.projects = len(projects)
        report.files = sum(len(infos) for infos in files.values())
        shown: dict[NormalizedName, RootEntry] = {}

        def one(project: NormalizedName) -> _Plan:
            try:  # one project that cannot be checked does not stop the others
                plan = self._project(project, files.get(project, []), check)
            except Exception as exc:
                log.exception("cannot check %s", project)
                plan = _Plan(None, RootEntry(None), [], failed=f"{type(exc).__name__}: {exc}")
            if progress:
                progress(max(1, len(files.get(project, []))))
            return plan

        failed: set[NormalizedName] = set()
        quarantined: set[str] = set()
        seen: dict[NormalizedName, str] = {}  # each page's ETag as written or read
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for project, plan in zip(projects, pool.map(one, projects), strict=True):
                report.drift += plan.drift
                report.set_aside += plan.set_aside
                if plan.failed is not None:
                    report.failed.append((project, plan.failed))
                    failed.add(project)
                if plan.root.display is not None:
                    shown[project] = plan.root
                if plan.quarantined:
                    quarantined.add(project)
                if plan.etag is not None:
                    seen[project] = plan.etag
        report.drift += self._root(shown, check, keep=failed, seen=seen)
        report.drift += self._edge(quarantined, check, failed, report)
        for drift in report.drift:
            log.warning("%s%s", "" if check else "repaired: ", drift)
        for key, reason in report.set_aside:
            log.warning("set aside %s: %s", self.indexer.where(key), reason)
        return report

    def root_from_pages(self) -> list[Drift]:
        """Write the root listing (and the landing page) again from the project pages, as
        :meth:`run` does, without looking at the files: for one that cannot be read."""
        shown: dict[NormalizedName, RootEntry] = {}
        for project in sorted(page_projects(self.indexer)):
            state = self._read_page(NormalizedName(project))
            entry = root_entry(state.page if state else None)
            if entry.display is not None:
                shown[NormalizedName(project)] = entry
        return self._root(shown, check=False)

    # -- one project ----------------------------------------------------------------------

    def _read_page(self, project: NormalizedName) -> Stored | None:
        """The stored page (None: it cannot be read at all)."""
        try:
            return self.indexer.pages.read(project)
        except CorruptDocument:  # not JSON, or not our page
            return None

    def _entry(
        self,
        info: ObjectInfo,
        known: FileEntry | None,
        drift: list[Drift],
        check: bool,
        set_aside: list[tuple[str, str]],
        names: dict[str, str],
    ) -> FileEntry | None:
        """The entry storage says ``info`` deserves, keeping what only the page knows;
        ``names``: the project name each file read says, by key."""
        project = project_of_key(info.key).project
        if known is not None and known.etag == info.etag and not self.verify_hashes:
            return known
        try:
            facts = self.indexer.inspect(info)
        except (InvalidDistribution, NotFound, OSError) as exc:
            set_aside.append((info.key, str(exc)))
            if known is not None:  # listed, and no longer what the page says: drift
                drift.append(Drift(project, f"{info.key} is not a valid distribution: {exc}"))
            return None
        names[info.key] = facts.meta.name
        seen = seen_again(known, info.etag, facts.entry.sha256) if known is not None else None
        if known is not None and seen is Seen.OVERWRITE:
            mismatch = (
                f"{info.key} is listed with sha256 {known.sha256}, which no stored bytes match "
                f"(the file holds {facts.entry.sha256})"
            )
            if check:
                drift.append(Drift(project, mismatch))
                return known
            taken, message = self.indexer.replaced(info, known, facts)  # the indexer's rule
            drift.append(Drift(project, message))
            if taken is None:
                return known  # restored: a hash pip has seen never changes
            facts, known = taken, None  # the stored bytes, with what the page alone knew
        if not check:  # a new or changed wheel's PEP 658 file
            self.indexer.write_metadata(facts, unless_there=True)
        return restated(known, facts.entry) if known is not None else facts.entry

    def _project(self, project: NormalizedName, infos: list[ObjectInfo], check: bool) -> _Plan:
        drift: list[Drift] = []
        set_aside: list[tuple[str, str]] = []
        state = self._read_page(project)
        page, readable = (state.page, True) if state is not None else (None, False)
        etag = state.etag if state is not None else None
        if not readable:
            drift.append(Drift(project, "the JSON page cannot be read"))
        refusal = self.reserved.refusal(project, None) if page is None and readable else None
        if refusal is not None and infos:  # a drop-in may not start a project in a namespace
            return _Plan(
                None, RootEntry(None), [], set_aside=tuple((i.key, refusal) for i in infos)
            )
        namespaces = self.reserved.entries(project)
        current = {f.key: f for f in page.files} if page else {}
        expected: dict[str, FileEntry] = {}
        names: dict[str, str] = {}
        # The file the page lists keeps its place; among new ones the first key wins.
        for info in sorted(infos, key=lambda i: (i.key not in current, i.key)):
            entry = self._entry(info, current.get(info.key), drift, check, set_aside, names)
            if entry is None:
                continue
            kind = project_of_key(info.key).kind
            candidate = Candidate(entry.filename, entry.key, entry.version, kind, entry.sha256)
            decision = decide_among(expected, None, candidate, mode=Mode.REBUILD)
            if decision.verdict is Verdict.ADMIT:
                expected[entry.filename] = entry
            elif decision.verdict is Verdict.CONFLICT:  # a byte-identical copy is no drift
                listed = decision.existing.key if decision.existing else "another"
                drift.append(
                    Drift(project, f"{info.key} repeats {entry.filename}; {listed} is indexed")
                )
        drift += self._metadata(project, [e for e in expected.values() if e.key in current], check)
        want = tuple(sorted(expected.values(), key=lambda f: f.sort_key))
        have = tuple(page.sorted_files()) if page else ()
        target = page
        if want != have:
            drift.append(Drift(project, _difference(have, want)))
            name = page.display_name if page else _display_name(self.indexer, infos, project, names)
            base = page or ProjectPage.empty(name)
            target = base.with_files(want)
        if target is not None and target.namespaces != namespaces:
            drift.append(Drift(project, f"the page says namespaces {_shown(target.namespaces)}"))
            target = target.with_namespaces(namespaces)
        if target is not None and target is page:
            body = self._stored(page_json_key(project))
            for key, problem in self.indexer.pages.stale_followers(target, body):
                drift.append(Drift(project, f"{key} {problem}"))
        if not check and drift:
            target, etag = self._write(project, want, target, namespaces)
        held = page is not None and page.withholds_files()
        root = root_entry(target)
        plan = None if check else target
        return _Plan(plan, root, drift, tuple(set_aside), None, held, etag)

    def _metadata(self, project: str, entries: list[FileEntry], check: bool) -> list[Drift]:
        """Entries the page already had must still have their ``.metadata`` file."""
        drift = []
        for entry in entries:
            if entry.metadata_sha256 and self.store.head(metadata_key(entry.key)) is None:
                drift.append(Drift(project, f"{metadata_key(entry.key)} is missing"))
                if not check:
                    info = self.store.head(entry.key)
                    try:
                        if info is not None:
                            self.indexer.write_metadata(self.indexer.inspect(info))
                    except (InvalidDistribution, NotFound, OSError) as exc:
                        log.warning("cannot make %s again: %s", metadata_key(entry.key), exc)
        return drift

    def _write(
        self,
        project: NormalizedName,
        want: tuple[FileEntry, ...],
        fallback: ProjectPage | None,
        namespaces: NamespaceEntries,
    ) -> tuple[ProjectPage | None, str | None]:
        """Replace the page's entries with ``want``, re-checking storage wherever the latest
        page disagrees (a concurrent upload or delete), then write what follows it (the
        page writer describes the newest release from its file if no description is kept).
        Returns the page as stored now, and its ETag (None: not known)."""

        def change(page: ProjectPage | None) -> ProjectPage | None:
            wanted = {f.key: f for f in want}
            latest = {f.key: f for f in page.files} if page else {}
            for key, entry in latest.items():  # landed after our listing? (or unreadable)
                if key not in wanted and self.indexer.is_stored(key, unknown=True):
                    wanted[key] = entry
            for key in [k for k in wanted if k not in latest]:  # left after our listing?
                if not self.indexer.is_stored(key, unknown=False):
                    del wanted[key]
            base = page or fallback or ProjectPage.empty(project)
            new_page = base.with_files(tuple(wanted.values())).with_namespaces(namespaces)
            if page is not None and (new_page.files, namespaces) == (page.files, page.namespaces):
                return None  # entries already right: only what follows needs repair
            return new_page

        try:
            state = self.indexer.pages.read(project)
        except CorruptDocument:  # unreadable: replace it as it is
            stored = self.store.head(page_json_key(project))
            state = Stored(None, stored.etag if stored else None)
        written = self.indexer.pages.update(project, change, start=state)
        if written is not None:
            return written.after, written.etag
        state = self.indexer.pages.read(project)
        if state.page is None or state.etag is None:
            return None, None
        followed = self.indexer.pages.follow(state.page, state.etag, body=state.body)
        return followed, state.etag if followed is state.page else None

    # -- the edge -------------------------------------------------------------------------

    def _edge(
        self, quarantined: set[str], check: bool, keep: Collection[str], report: Report
    ) -> list[Drift]:
        """PEP 792 at the CloudFront edge: a record for each quarantined project and for no
        other (``keep``: projects that could not be checked keep theirs); unless ``check``,
        the records are made to match."""
        if self.edge is None:
            return []
        try:
            if check:
                missing, extra = self.edge.drift(quarantined, keep)
            else:
                missing, extra = self.edge.converge(quarantined, keep)
        except EdgeWriteFailed as exc:
            report.failed.append(("the edge's quarantine records", str(exc)))
            return []
        return [Drift(p, "quarantined, but the edge serves its files") for p in missing] + [
            Drift(p, "not quarantined, but the edge refuses its files") for p in extra
        ]

    # -- the root listing -----------------------------------------------------------------

    def _root(
        self,
        shown: dict[NormalizedName, RootEntry],
        check: bool,
        keep: Collection[NormalizedName] = (),
        seen: Mapping[NormalizedName, str] | None = None,
    ) -> list[Drift]:
        """Compare (and repair) the root listing; ``keep``: projects that could not be
        checked, listed as they are; ``seen``: the ETag of each page as this run saw it."""
        drift = []
        try:
            root, _ = self.indexer.pages.read_root()
            readable = True
        except CorruptDocument:
            root, readable = RootListing(), False
            drift.append(Drift("(root)", "the root listing cannot be read"))
        listed = {p: RootEntry(d, root.summaries.get(p, "")) for p, d in root.projects.items()}
        shown = {**shown, **{p: listed[p] for p in keep if p in listed}}
        differing = [
            project
            for project in sorted(set(root.projects) | set(shown))
            if listed.get(project) != shown.get(project)
        ]
        # a change recorded for the next rebuild of the listing, within its window: not drift
        pending = waiting(self.store) & set(differing)
        differing = [p for p in differing if p not in pending]
        drift += [Drift(p, "the root listing disagrees with its page") for p in differing]
        body = self._stored(ROOT_JSON_KEY) if readable and not differing else b""
        if readable and not differing and (body or not pending):  # none yet: the rebuild's
            for key, problem in self.indexer.pages.stale_root_followers(root, body):
                drift.append(Drift("(root)", f"{key} {problem}"))
        counted = readable and not differing and not pending
        drift += self._landing(len(shown) if counted else None)
        if check or not drift:
            return drift
        if not readable:  # written again from scratch, its serial above any it had
            floor = self.indexer.pages.read_landing()[0].root_serial
            self.store.put(ROOT_JSON_KEY, RootListing(serial=floor).to_json_bytes())
        changes = {p: shown.get(p, RootEntry(None)) for p in differing}
        # each page is looked at again as the listing is swapped, and read again if it
        # changed since this run saw it (or the run does not know how it saw it)
        known = {p: seen[p] for p in changes if seen and p in seen}
        current = (
            self.indexer.pages.update_root(changes, force=True, seen=known)
            or self.indexer.pages.read_root()[0]
        )
        self.indexer.pages.update_landing(listing=current, force=True)
        return drift

    def _landing(self, projects: int | None) -> list[Drift]:
        """The landing page must exist, carry its manifest and count the listed projects
        (``projects``; None: the root listing is wrong already, which repairs the count)."""
        try:
            html = self.store.get(LANDING_KEY)[1]
        except NotFound:
            return [Drift("(root)", f"{LANDING_KEY} is missing")]
        summary = self.indexer.pages.manifest(html)
        if summary is None:
            return [Drift("(root)", f"{LANDING_KEY} carries no manifest")]
        if projects is not None and summary.projects != projects:
            return [
                Drift("(root)", f"{LANDING_KEY} counts {summary.projects} projects, not {projects}")
            ]
        return []

    def _stored(self, key: str) -> bytes:
        try:
            return self.store.get(key)[1]
        except NotFound:
            return b""


def _shown(entries: NamespaceEntries) -> str:
    """What a page says of its namespaces, for a drift line.

    >>> from skypi.core.pages import NamespaceEntry
    >>> _shown((NamespaceEntry("acme", False, "platform"),)), _shown(None)
    ('acme (not owned)', 'none')
    """
    if not entries:
        return "none"
    return ", ".join(f"{e.name}{'' if e.owned else ' (not owned)'}" for e in entries)


def _display_name(
    indexer: Indexer, infos: list[ObjectInfo], project: str, names: Mapping[str, str]
) -> str:
    """The name the first file (by key) that can be read says; ``names``: those read already."""
    for info in sorted(infos, key=lambda i: i.key):
        if info.key in names:
            return names[info.key]
        try:
            return indexer.inspect(info).meta.name
        except (InvalidDistribution, NotFound, OSError):
            continue
    return project


def _difference(have: tuple[FileEntry, ...], want: tuple[FileEntry, ...]) -> str:
    old = {f.filename: f for f in have}
    new = {f.filename: f for f in want}
    parts = []
    if added := sorted(new.keys() - old.keys()):
        parts.append(f"not listed: {', '.join(added)}")
    if gone := sorted(old.keys() - new.keys()):
        parts.append(f"listed but not stored: {', '.join(gone)}")
    if changed := sorted(n for n in new.keys() & old.keys() if new[n] != old[n]):
        parts.append(f"entry differs from the file: {', '.join(changed)}")
    return "; ".join(parts) or "file order differs"


__all__ = ["Drift", "Rebuilder", "Report"]
