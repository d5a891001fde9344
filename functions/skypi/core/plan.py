"""What one batch of observations does to a project's page: the write path's one decision.

The indexer observes storage (files that arrived, with what their bytes say; files found
gone; files seen again at another ETag), then calls :func:`plan` inside the page writer's
compare-and-swap, with the page as stored at that moment. The plan says which page to write
(or none), what each arriving file became (:class:`~skypi.core.admission.Decision`), which
release to describe, and how the root listing shows the project. Pure: it sees pages and
facts, never storage, so a lost race only means planning again against the newer page.

The rules it applies live in :mod:`skypi.core.admission` (admit, identical, a copy under
another key, a conflict, one sdist per release, a closed project), and which of them apply
depends on each arrival's :class:`~skypi.core.admission.Mode`; what a file seen again under
its listed key is lives in :func:`seen_again`. An admin's edit (a yank, an unyank: a
:class:`Mark`; a status: :class:`SetStatus`) is planned here too, under the same swap.

>>> from datetime import UTC, datetime
>>> wheel = FileEntry("demo-1.0-py3-none-any.whl", "packages/demo/demo-1.0-py3-none-any.whl",
...                   "1.0", "ab" * 32, 10, datetime(2026, 1, 1, tzinfo=UTC))
>>> done = plan(None, Observed(arrivals=(Arrival(wheel, "wheel", "Demo"),)))
>>> done.page.display_name, done.decisions[wheel.key].verdict, done.root
('Demo', <Verdict.ADMIT: 'admit'>, RootEntry(display='Demo', summary=''))
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, Protocol

from skypi.core.admission import Candidate, Decision, Mode, Verdict, decide_among
from skypi.core.digests import sha256_hex
from skypi.core.filenames import DistFilename, same_version
from skypi.core.keys import metadata_key
from skypi.core.metadata import CoreMetadata
from skypi.core.namespaces import Namespaces
from skypi.core.pages import FileEntry, ProjectPage, ProjectStatus, RootEntry, root_entry


class Seen(enum.Enum):
    """What a file found under a key its page lists is, against the listed entry."""

    REPLAY = "replay"  # the very version indexed (its ETag): nothing happened
    COPY = "copy"  # the listed bytes, stored again (another ETag): the entry follows it
    OVERWRITE = "overwrite"  # other bytes, changed in place: a published file never changes


def seen_again(known: FileEntry, etag: str, sha256: str | None) -> Seen:
    """What storage holds under a listed key, from its ETag and, where the ETag differs, the
    SHA-256 of its bytes (None: they could not be hashed in time, which counts as other bytes:
    restoring the original is safe either way).

    >>> from datetime import UTC, datetime
    >>> e = FileEntry("a-1.0.tar.gz", "k", "1.0", "ab" * 32, 1, datetime.now(UTC), etag='"1"')
    >>> seen_again(e, '"1"', None), seen_again(e, '"2"', "ab" * 32), seen_again(e, '"2"', None)
    (<Seen.REPLAY: 'replay'>, <Seen.COPY: 'copy'>, <Seen.OVERWRITE: 'overwrite'>)
    """
    if known.etag == etag:
        return Seen.REPLAY
    return Seen.COPY if sha256 == known.sha256 else Seen.OVERWRITE


def restated(known: FileEntry, stored: FileEntry) -> FileEntry:
    """A listed file's bytes read again: the entry storage gives them, keeping what only the
    page knows (the yank, the first upload time, the provenance)."""
    return replace(
        stored, yanked=known.yanked, upload_time=known.upload_time, provenance=known.provenance
    )


def take_over(known: FileEntry, stored: FileEntry) -> FileEntry:
    """The entry for bytes that replaced a listed file where the listed ones are gone, keeping
    what only the page knows (the yank, the first upload time); a provenance attested the old
    bytes, so it goes."""
    return replace(restated(known, stored), provenance=None)


class StoredFile(Protocol):
    """What storage says of a stored file (the store's ``ObjectInfo``)."""

    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def etag(self) -> str: ...
    @property
    def last_modified(self) -> datetime: ...


@dataclass(frozen=True)
class Facts:
    """A stored file, inspected: its name, its core metadata and the entry it deserves."""

    dist: DistFilename
    meta: CoreMetadata
    entry: FileEntry

    def with_provenance(self, href: str) -> Facts:
        """The same file, its entry linking to its PEP 740 provenance."""
        return replace(self, entry=replace(self.entry, provenance=href))

    @property
    def metadata_file(self) -> tuple[str, bytes] | None:
        """The PEP 658 file served beside a wheel (its key and bytes, derived from the
        file's bytes alone); None for an sdist, which has none."""
        if not self.entry.metadata_sha256:
            return None
        return metadata_key(self.entry.key), self.meta.raw

    def arrival(self, mode: Mode) -> Arrival:
        summary = " ".join(self.meta.summary.split())
        return Arrival(self.entry, self.dist.kind, self.meta.name, mode, summary)


def facts_of(dist: DistFilename, meta: CoreMetadata, stored: StoredFile, sha256: str) -> Facts:
    """The entry a stored file deserves, from its metadata and what storage says of it."""
    entry = FileEntry(
        filename=dist.filename,
        key=stored.key,
        version=str(meta.version),
        sha256=sha256,
        size=stored.size,
        upload_time=stored.last_modified,
        requires_python=meta.requires_python,
        metadata_sha256=sha256_hex(meta.raw) if dist.kind == "wheel" else None,
        etag=stored.etag,
    )
    return Facts(dist, meta, entry)


@dataclass(frozen=True)
class Arrival:
    """A file that arrived, read: the entry it deserves and what the rules need besides."""

    entry: FileEntry
    kind: Literal["wheel", "sdist"]
    name: str  # the project's name as its metadata spells it (a new page's display name)
    mode: Mode = Mode.DROP_IN  # uploaded: PyPI's upload rules apply (a drop-in is not)
    summary: str = ""  # its metadata's, on one line: the page's if it becomes the newest

    @property
    def upload(self) -> bool:
        return self.mode.upload_rules

    def candidate(self) -> Candidate:
        e = self.entry
        return Candidate(e.filename, e.key, e.version, self.kind, e.sha256)


Refresh = tuple[str, str | None]  # a listed entry's new (ETag, provenance)
Decisions = Mapping[str, Decision]  # by key


@dataclass(frozen=True)
class Mark:
    """An admin's yank (PEP 592; ``yanked``: its reason, "" for none) or unyank (None) of the
    files it names: one file by its name, or every file of a release (PEP 440 equality)."""

    yanked: str | None
    filename: str | None = None
    version: str | None = None

    def names(self, entry: FileEntry) -> bool:
        if self.filename is not None:
            return entry.filename == self.filename
        return self.version is not None and same_version(entry.version, self.version)


@dataclass(frozen=True)
class SetStatus:
    """An admin's setting of the project's status (PEP 792), checked already
    (:func:`skypi.core.pages.check_status`)."""

    status: ProjectStatus
    reason: str | None


Edit = Mark | SetStatus


@dataclass(frozen=True)
class Observed:
    """What was seen of one project's files in storage, before its page is planned."""

    arrivals: tuple[Arrival, ...] = ()
    # key -> the ETag of the entry found gone (None: whichever entry the page lists)
    departures: Mapping[str, str | None] = field(default_factory=dict)
    refreshed: Mapping[str, Refresh] = field(default_factory=dict)  # key -> (ETag, provenance)
    # PEP 752: the namespaces, read when the page does not exist yet (a project starting)
    namespaces: Namespaces | None = None
    edit: Edit | None = None  # an admin's edit (Mode.ADMIN), which comes with nothing else

    @classmethod
    def of(
        cls,
        read: Iterable[Facts],
        uploads: Collection[str],
        departures: Mapping[str, str | None],
        refreshed: Mapping[str, Refresh],
    ) -> Observed:
        """The files read (``uploads``: the keys that came as uploads, held to PyPI's upload
        rules; any other is a drop-in), the keys found gone and the entries refreshed."""
        modes = {True: Mode.UPLOAD, False: Mode.DROP_IN}
        arrivals = tuple(f.arrival(modes[f.entry.key in uploads]) for f in read)
        return cls(arrivals, departures, refreshed)

    def changes(self, page: ProjectPage | None) -> bool:
        """Whether this can change ``page`` at all (else its page is not even tried)."""
        listed = {f.key for f in page.files} if page else set()
        return bool(self.arrivals or self.refreshed or self.departures.keys() & listed)


@dataclass(frozen=True)
class Plan:
    """The page to write (None: the stored one says it all), the decision for each arrival
    (by key), how the root listing shows the project afterwards, the filenames an admin's
    edit changed, and the arrival (its key) whose metadata describes the release that became
    the newest (None: the newest release is not new to the page)."""

    page: ProjectPage | None
    decisions: Mapping[str, Decision]
    root: RootEntry
    edited: tuple[str, ...] = ()
    describe: str | None = None

    def decision(self, key: str) -> Decision:
        return self.decisions.get(key, Decision(Verdict.ADMIT))


def plan(page: ProjectPage | None, observed: Observed) -> Plan:
    """Apply ``observed`` to ``page`` (as stored now). Departed and refreshed entries first,
    then each arrival in order against the files so far, so two arrivals of one filename in a
    batch are decided like two writers: the first is listed, the second is judged against it."""
    if observed.edit is not None:
        return _edited(page, observed.edit)
    if page is None and not observed.arrivals:
        return Plan(None, {}, root_entry(None))
    decisions: dict[str, Decision] = {}
    base = page or _started(observed, decisions)
    if base is None:  # every file would start a project in a namespace: none listed
        return Plan(None, decisions, root_entry(None))
    files = {
        f.filename: _refreshed(f, observed.refreshed.get(f.key))
        for f in base.files
        if not _departed(f, observed.departures)
    }
    refusal = base.upload_refusal()
    for arrival in observed.arrivals:
        entry = arrival.entry
        if entry.key in decisions:  # refused already (a namespace's)
            continue
        decision = decide_among(files, refusal, arrival.candidate(), mode=arrival.mode)
        decisions[entry.key] = decision
        if decision.verdict is Verdict.ADMIT:
            files[entry.filename] = entry
        elif decision.verdict is Verdict.IDENTICAL and decision.existing is not None:
            listed = decision.existing  # listed meanwhile (a watcher, its own event)
            if listed.key == entry.key and entry.provenance and not listed.provenance:
                files[entry.filename] = replace(listed, provenance=entry.provenance)
    if page is not None and tuple(files.values()) == base.files:
        return Plan(None, decisions, root_entry(page))
    new = base.with_files(tuple(files.values()))
    first = _describing(new, base, observed.arrivals, decisions)
    if first is None:
        return Plan(new, decisions, root_entry(new))
    new = new.with_summary(first.summary)
    return Plan(new, decisions, root_entry(new), describe=first.entry.key)


def _describing(
    new: ProjectPage, base: ProjectPage, arrivals: Iterable[Arrival], decisions: Decisions
) -> Arrival | None:
    """The arrival listed in ``new`` whose metadata describes the release that became the
    newest, when that release is new to the page (the page for people shows only the newest;
    an older one is described if it ever becomes the newest)."""
    newest = new.latest_version  # worked out once: the writer and the page for people ask too
    if newest is None or any(same_version(newest, f.version) for f in base.files):
        return None
    admitted = (a for a in arrivals if a.entry.version == newest)
    return next((a for a in admitted if _listed(a, decisions)), None)


def _listed(arrival: Arrival, decisions: Decisions) -> bool:
    decision = decisions.get(arrival.entry.key)
    return decision is None or decision.verdict is Verdict.ADMIT


def _edited(page: ProjectPage | None, edit: Edit) -> Plan:
    """An admin's edit of the page as stored now (None: no such project, nothing to edit). A
    status is written even when it is the same (a serial and a write, as asked); a mark only
    when it changes an entry.

    >>> from datetime import UTC, datetime
    >>> wheel = FileEntry("demo-1.0-py3-none-any.whl", "packages/demo/demo-1.0-py3-none-any.whl",
    ...                   "1.0", "ab" * 32, 10, datetime(2026, 1, 1, tzinfo=UTC))
    >>> page = ProjectPage.empty("Demo").with_files((wheel,))
    >>> yanked = _edited(page, Mark("broken", version="1.0.0"))
    >>> yanked.edited, yanked.page.files[0].yanked, _edited(yanked.page, Mark("broken")).page
    (('demo-1.0-py3-none-any.whl',), 'broken', None)
    """
    if page is None:
        return Plan(None, {}, root_entry(None))
    if isinstance(edit, SetStatus):
        new = page.with_status(edit.status, edit.reason)
        return Plan(new, {}, root_entry(new))
    files = tuple(replace(f, yanked=edit.yanked) if edit.names(f) else f for f in page.files)
    edited = tuple(new.filename for old, new in zip(page.files, files, strict=True) if old != new)
    if not edited:
        return Plan(None, {}, root_entry(page))
    new = page.with_files(files)
    return Plan(new, {}, root_entry(new), edited)


def _started(observed: Observed, decisions: dict[str, Decision]) -> ProjectPage | None:
    """A new project's page, saying which namespaces cover it (PEP 752); None when every file
    is a drop-in that may not start it there (each gets its decision). An upload was checked
    by the API against its caller's grants; a file dropped into storage has no caller."""
    page = ProjectPage.empty(observed.arrivals[0].name)
    if observed.namespaces is None:
        return page
    refusal = observed.namespaces.refusal(page.name, None)
    for arrival in observed.arrivals:
        if refusal is not None and not arrival.upload:
            decisions[arrival.entry.key] = Decision(Verdict.RESERVED, refusal)
    if all(a.entry.key in decisions for a in observed.arrivals):
        return None
    return page.with_namespaces(observed.namespaces.entries(page.name))


def _departed(entry: FileEntry, departures: Mapping[str, str | None]) -> bool:
    """Whether ``entry`` is one of the files found gone: the very entry that was checked (a
    newer upload under the same key, listed since, stays)."""
    if entry.key not in departures:
        return False
    checked = departures[entry.key]
    return checked is None or checked == entry.etag


def _refreshed(entry: FileEntry, update: Refresh | None) -> FileEntry:
    if update is None:
        return entry
    etag, provenance = update
    return replace(entry, etag=etag, provenance=provenance)


__all__ = [
    "Arrival",
    "Edit",
    "Facts",
    "Mark",
    "Mode",
    "Observed",
    "Plan",
    "Seen",
    "SetStatus",
    "StoredFile",
    "facts_of",
    "plan",
    "restated",
    "seen_again",
    "take_over",
]
