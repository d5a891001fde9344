"""The indexer: turns changes in ``packages/`` into pages, safely under concurrency.

- Every shared object (project JSON page, root listing) is written with compare-and-swap and
  retried on conflict, so concurrent writers never lose each other's files.
- HTML is rendered from the JSON page and carries its serial; an older render never replaces a
  newer one.
- Every page object has a gzip variant (``<key>.gz``), written right after the page with the
  same serial rule, so it is never ahead of its page and never goes back.
- Storage is the truth: a "landed" key that is gone, or a "gone" key that is there, changes
  nothing, so events may repeat and arrive in any order.
- Work is proportional to the change: one project's objects, and the root listing only when a
  project gains its first file or loses its last.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName

from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import DistFilename
from skypi.core.http import gzip_key, gzip_page
from skypi.core.metadata import (
    DEFAULT_LIMITS,
    CoreMetadata,
    Limits,
    read_metadata,
)
from skypi.core.pages import (
    ROOT_HTML_KEY,
    ROOT_JSON_KEY,
    FileEntry,
    ProjectPage,
    RootListing,
    html_twins,
    metadata_key,
    page_html_key,
    page_json_key,
)
from skypi.core.render import page_serial, render_project_html, render_root_html
from skypi.core.site import (
    LANDING_KEY,
    SITE_JSON_KEY,
    Release,
    SiteSummary,
    Upload,
    latest_version,
    project_site_key,
    release_key,
    render_landing,
    render_project_site,
)
from skypi.indexer.changes import Change as Change
from skypi.indexer.changes import Gone as Gone
from skypi.indexer.changes import Landed as Landed
from skypi.indexer.changes import project_of_key as project_of_key
from skypi.store.base import NotFound, ObjectInfo, PreconditionFailed, Store, Versioned

if TYPE_CHECKING:  # botocore is not needed to index a folder (`skypi serve`, no aws extra)
    from skypi.store.cdn import Cdn

log = logging.getLogger("skypi.indexer")
MAX_ATTEMPTS = 100


@dataclass
class Outcome:
    """What one ``apply`` did; ``refused`` and ``conflicts`` are reported, never raised."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        self.added += other.added
        self.removed += other.removed
        self.skipped += other.skipped
        self.refused += other.refused
        self.conflicts += other.conflicts


@dataclass(frozen=True)
class _Facts:
    """A landed file, inspected: what its page entry will say."""

    dist: DistFilename
    meta: CoreMetadata
    entry: FileEntry


class HashTimeout(InvalidDistribution):
    """A file with no whole-object SHA-256 in storage, too big to hash in the time allowed."""


class Indexer:
    """Applies changes to one store's pages."""

    def __init__(
        self, store: Store, limits: Limits = DEFAULT_LIMITS, cdn: Cdn | None = None
    ) -> None:
        self.store = store
        self.limits = limits
        self.cdn = cdn  # told to drop files deleted or restored, which it caches for a year
        # time.monotonic() past which no file is hashed further (a Lambda's time runs out:
        # better a clear refusal than a timeout retried into the dead-letter queue)
        self.hash_deadline: float | None = None

    # -- reading the current state -------------------------------------------------------

    def read_page(self, project: NormalizedName) -> tuple[ProjectPage | None, str | None]:
        try:
            info, raw = self.store.get(page_json_key(project))
        except NotFound:
            return None, None
        return ProjectPage.from_json_bytes(raw), info.etag

    def read_root(self) -> tuple[RootListing, str | None]:
        try:
            info, raw = self.store.get(ROOT_JSON_KEY)
        except NotFound:
            return RootListing(), None
        return RootListing.from_json_bytes(raw), info.etag

    # -- applying changes ----------------------------------------------------------------

    def apply(self, changes: Iterable[Change]) -> Outcome:
        """Index a batch of changes, each project's page written once."""
        outcome = Outcome()
        by_project: dict[NormalizedName, list[Change]] = defaultdict(list)
        for change in changes:
            try:
                dist = project_of_key(change.key)
            except (InvalidDistribution, ValueError) as exc:
                log.info("skipping %s: %s", change.key, exc)
                outcome.skipped.append((change.key, str(exc)))
                continue
            by_project[dist.project].append(change)
        for project, project_changes in by_project.items():
            outcome.merge(self._apply_project(project, project_changes))
        return outcome

    def inspect(self, info: ObjectInfo, sha256: str | None = None) -> _Facts:
        """Read a stored file's metadata (ranged reads) and digest: what its entry will say."""
        return self._inspect(info, project_of_key(info.key), sha256)

    def _inspect(self, info: ObjectInfo, dist: DistFilename, sha256: str | None) -> _Facts:
        read_at = lambda start, length: self.store.read_range(info.key, start, length)  # noqa: E731
        meta = read_metadata(
            dist, info.size, read_at, lambda: self.store.open(info.key), self.limits
        )
        digest = sha256 or info.sha256 or self.sha256_of(info.key, size=info.size)
        entry = FileEntry(
            filename=dist.filename,
            key=info.key,
            version=str(meta.version),
            sha256=digest,
            size=info.size,
            upload_time=info.last_modified,
            requires_python=meta.requires_python,
            metadata_sha256=hashlib.sha256(meta.raw).hexdigest() if dist.kind == "wheel" else None,
            etag=info.etag,
        )
        return _Facts(dist, meta, entry)

    def restore(self, key: str, known: FileEntry) -> bool:
        """Put back the version of ``key`` that ``known`` was indexed at, if storage keeps it."""
        if isinstance(self.store, Versioned) and self.store.restore_version(key, known.etag):
            if self.cdn is not None:  # an edge may have cached the overwriting bytes
                self.cdn.invalidate([key])
            return True
        return False

    def overwritten(self, key: str, known: FileEntry) -> str:
        """A drop-in replaced an indexed file in place: put the original back if we can."""
        if self.restore(key, known):
            return f"{key} was overwritten; the original was restored from its previous version"
        return (
            f"{key} was overwritten and this storage keeps no earlier version: the page keeps "
            "the hash pip saw; put the original back, or run `skypi reindex` to list the file "
            "as it is now"
        )

    def sha256_of(self, key: str, deadline: float | None = None, *, size: int | None = None) -> str:
        """Hash a stored file; :class:`HashTimeout` if ``deadline`` (or :attr:`hash_deadline`)
        passes first, saying how far it got and how to publish the file instead. With
        ``size``, the file must hold exactly that many bytes: one that grows or shrinks while
        it is read is still being written, and is not indexed yet."""
        deadline = deadline if deadline is not None else self.hash_deadline
        started, done = time.monotonic(), 0
        digest = hashlib.sha256()
        with self.store.open(key) as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
                done += len(chunk)
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
        if size is not None and done != size:
            raise InvalidDistribution(f"{key} changed while it was read (still being written?)")
        return digest.hexdigest()

    def _same_bytes(self, info: ObjectInfo, known: FileEntry) -> bool:
        """Whether a changed object still holds the indexed bytes; one too big to hash in
        time is taken for an overwrite (restoring the original is safe either way)."""
        try:
            return (info.sha256 or self.sha256_of(info.key, size=info.size)) == known.sha256
        except HashTimeout:
            return False

    def write_metadata(self, facts: _Facts) -> None:
        key = metadata_key(facts.entry.key)
        try:
            self.store.put(key, facts.meta.raw, if_none_match=True)
        except PreconditionFailed:
            _, existing = self.store.get(key)
            if existing != facts.meta.raw:  # left over from a file that was replaced
                self.store.put(key, facts.meta.raw)

    def _apply_project(self, project: NormalizedName, changes: list[Change]) -> Outcome:
        outcome = Outcome()
        page, _ = self.read_page(project)
        current = {f.key: f for f in page.files} if page else {}
        arrivals: list[_Facts] = []
        departures: set[str] = set()
        refreshed: dict[str, str] = {}
        for change in changes:
            info = self.store.head(change.key)
            if info is None:
                departures.add(change.key)  # gone, whatever the event said
                continue
            if isinstance(change, Gone):
                outcome.skipped.append((change.key, "still in storage"))
                continue
            known = current.get(change.key)
            if known is not None and known.etag == info.etag:
                continue  # already indexed at this version: a replay
            if known is not None:
                try:
                    same = self._same_bytes(info, known)
                except (InvalidDistribution, NotFound, OSError) as exc:
                    log.warning("cannot read %s: %s", change.key, exc)
                    outcome.skipped.append((change.key, str(exc)))
                    continue
                if same:
                    refreshed[change.key] = info.etag  # same bytes, new ETag (a copy): a replay
                    continue
                message = self.overwritten(change.key, known)
                log.error("conflict: %s", message)
                outcome.conflicts.append((change.key, message))
                continue
            try:
                facts = self._inspect(info, project_of_key(change.key), change.sha256)
            except (InvalidDistribution, NotFound, OSError) as exc:
                log.warning("refusing %s: %s", change.key, exc)
                outcome.refused.append((change.key, str(exc)))
                continue
            arrivals.append(facts)
        if refreshed:  # remember the new ETag, so the bytes are not read again next time
            self.update_files(project, lambda e: replace(e, etag=refreshed.get(e.key, e.etag)))
        for facts in arrivals:
            if facts.entry.metadata_sha256:
                self.write_metadata(facts)
        by_version = {f.entry.version: f for f in arrivals}
        described = {v: self.describe(project, f) for v, f in by_version.items()}
        if arrivals or departures & current.keys():
            self._update_page(project, arrivals, departures, outcome, described)
        for key in departures:
            self.store.delete(metadata_key(key))
        if self.cdn is not None and departures & current.keys():
            self.cdn.invalidate(sorted(departures & current.keys()))
        return outcome

    def _update_page(
        self,
        project: NormalizedName,
        arrivals: list[_Facts],
        departures: set[str],
        outcome: Outcome,
        described: dict[str, tuple[Release, bool]] | None = None,
    ) -> None:
        described = described or {}
        for _ in range(MAX_ATTEMPTS):
            page, etag = self.read_page(project)
            base = page or ProjectPage.empty(arrivals[0].meta.name if arrivals else project)
            files = {f.filename: f for f in base.files if f.key not in departures}
            added, conflicts = [], []
            orphans: set[str] = set()  # .metadata written for a file that was then refused
            for facts in arrivals:
                existing = files.get(facts.entry.filename)
                if existing is None:
                    files[facts.entry.filename] = facts.entry
                    added.append(facts.entry.filename)
                elif existing.key != facts.entry.key or existing.sha256 != facts.entry.sha256:
                    if existing.key != facts.entry.key:
                        orphans.add(metadata_key(facts.entry.key))
                    conflicts.append(
                        (
                            facts.entry.key,
                            f"{facts.entry.filename} is already indexed from {existing.key}",
                        )
                    )
            removed = [f.filename for f in base.files if f.key in departures]
            if not added and not removed:
                outcome.conflicts += conflicts
                break
            new_page = base.with_files(tuple(files.values()))
            newest = latest_version(new_page)
            if newest in described:
                new_page = replace(new_page, summary=described[newest][0].summary)
            try:
                if etag is None:
                    self.store.put(
                        page_json_key(project), new_page.to_json_bytes(), if_none_match=True
                    )
                else:
                    self.store.put(page_json_key(project), new_page.to_json_bytes(), if_match=etag)
            except PreconditionFailed:
                continue
            outcome.added += added
            outcome.removed += removed
            outcome.conflicts += conflicts
            for version, (release, stored) in described.items():
                if not stored and any(files[name].version == version for name in added):
                    self.write_release(project, release)  # only for files that were listed
            self._write_followers(new_page, [release for release, _ in described.values()])
            self.note_uploads(new_page, added)
            if bool(base.files) != bool(new_page.files) or base.summary != new_page.summary:
                self.sync_root(project)
            break
        else:
            raise RuntimeError(f"gave up updating {project} after {MAX_ATTEMPTS} conflicts")
        for key in orphans:
            self.store.delete(key)
        for _key, message in conflicts:
            log.error("conflict: %s", message)
        for name in added:
            log.info("indexed %s", name)
        for name in removed:
            log.info("removed %s", name)

    def update_files(
        self, project: NormalizedName, change: Callable[[FileEntry], FileEntry | None]
    ) -> list[str]:
        """Rewrite matching entries (``change`` returns the new entry, or None to keep one)."""
        for _ in range(MAX_ATTEMPTS):
            page, etag = self.read_page(project)
            if page is None:
                return []
            changed: list[str] = []
            files = []
            for entry in page.files:
                new = change(entry)
                if new is not None and new != entry:
                    changed.append(entry.filename)
                files.append(new if new is not None else entry)
            if not changed:
                return []
            new_page = page.with_files(tuple(files))
            try:
                self.store.put(page_json_key(project), new_page.to_json_bytes(), if_match=etag)
            except PreconditionFailed:
                continue
            self._write_followers(new_page)
            return changed
        raise RuntimeError(f"gave up updating {project} after {MAX_ATTEMPTS} conflicts")

    def set_status(
        self, project: NormalizedName, status: str, reason: str | None
    ) -> ProjectPage | None:
        """Set a project's PEP 792 status (None: no such project). ValueError if invalid."""
        for _ in range(MAX_ATTEMPTS):
            page, etag = self.read_page(project)
            if page is None:
                return None
            new_page = page.with_status(status, reason)
            try:
                self.store.put(page_json_key(project), new_page.to_json_bytes(), if_match=etag)
            except PreconditionFailed:
                continue
            self._write_followers(new_page)
            return new_page
        raise RuntimeError(f"gave up updating {project} after {MAX_ATTEMPTS} conflicts")

    # -- pages that follow others ---------------------------------------------------------

    def _write_followers(self, page: ProjectPage, described: list[Release] | None = None) -> None:
        """What follows a project's JSON page once it is written: its gzip variant, the HTML
        twins (each with its variant) and the project's page for people."""
        self.write_variant(page_json_key(page.name), page.to_json_bytes(), page.serial)
        self._write_html(page_html_key(page.name), render_project_html(page), page.serial)
        self.write_project_site(page, described)

    def _write_html(self, html_key: str, html: bytes, serial: int) -> None:
        """Write a rendered page (both of its stored twins, each followed by its gzip variant)
        unless a newer one is there."""
        for key in html_twins(html_key):
            self.write_if_newer(key, html, serial)
            self.write_variant(key, html, serial)

    def write_variant(self, key: str, page: bytes, serial: int, *, repair: bool = False) -> None:
        """The gzip variant of the page just written under ``key`` (its bytes: ``page``)."""
        self.write_if_newer(gzip_key(key), gzip_page(page), serial, repair=repair)

    def sync_variant(self, key: str, *, repair: bool = False) -> None:
        """Give the page stored under ``key`` its gzip variant, from the stored bytes."""
        try:
            _, page = self.store.get(key)
        except NotFound:
            return
        self.write_variant(key, page, page_serial(page), repair=repair)

    def write_if_newer(self, key: str, html: bytes, serial: int, *, repair: bool = False) -> None:
        """Write ``html`` unless a render at least as new is there (with ``repair``: unless a
        newer one is, or these very bytes; a page that only lost its HTML gets it back)."""
        for _ in range(MAX_ATTEMPTS):
            try:
                info, existing = self.store.get(key)
            except NotFound:
                info, existing = None, b""
            stored = page_serial(existing) if info is not None else -1
            if stored > serial or existing == html or (stored == serial and not repair):
                return
            try:
                if info is None:
                    self.store.put(key, html, if_none_match=True)
                else:
                    self.store.put(key, html, if_match=info.etag)
                return
            except PreconditionFailed:
                continue
        raise RuntimeError(f"gave up writing {key} after {MAX_ATTEMPTS} conflicts")

    def sync_root(self, project: NormalizedName | None = None) -> None:
        """Make the root listing agree with ``project``'s page (read after the root's ETag)."""
        for _ in range(MAX_ATTEMPTS):
            root, etag = self.read_root()
            new_root = root
            if project is not None:
                page, _ = self.read_page(project)
                shown = page.display_name if page and page.files else None
                new_root = root.with_project(project, shown, page.summary if page else "")
            if new_root is root and etag is not None:
                self.sync_variant(ROOT_JSON_KEY)
                self._write_html(ROOT_HTML_KEY, render_root_html(root), root.serial)
                self.update_site(projects=len(root.projects))
                return
            try:
                if etag is None:
                    self.store.put(ROOT_JSON_KEY, new_root.to_json_bytes(), if_none_match=True)
                else:
                    self.store.put(ROOT_JSON_KEY, new_root.to_json_bytes(), if_match=etag)
            except PreconditionFailed:
                continue
            self.write_variant(ROOT_JSON_KEY, new_root.to_json_bytes(), new_root.serial)
            self._write_html(ROOT_HTML_KEY, render_root_html(new_root), new_root.serial)
            self.update_site(projects=len(new_root.projects))
            return
        raise RuntimeError(f"gave up updating the root listing after {MAX_ATTEMPTS} conflicts")

    # -- pages for people (skypi.core.site) -------------------------------------------------

    def describe(self, project: NormalizedName, facts: _Facts) -> tuple[Release, bool]:
        """A release's summary and rendered description, and whether it is stored already
        (a release is rendered once: its first listed file's metadata describes it)."""
        try:
            raw = self.store.get(release_key(project, facts.entry.version))[1]
            return Release.from_json_bytes(raw), True
        except NotFound:
            pass
        try:
            release = Release.from_metadata(facts.meta.raw)
        except Exception as exc:  # a hostile description must not stop the file being indexed
            log.warning("description of %s not rendered: %s", facts.entry.filename, exc)
            release = Release(facts.entry.version)
        return replace(release, version=facts.entry.version), False

    def write_release(self, project: NormalizedName, release: Release) -> None:
        try:
            key = release_key(project, release.version)
            self.store.put(key, release.to_json_bytes(), if_none_match=True)
        except PreconditionFailed:  # another file of the release was listed first: it stands
            pass

    def write_project_site(self, page: ProjectPage, described: list[Release] | None = None) -> None:
        newest = latest_version(page)
        release = next((r for r in described or () if r.version == newest), None)
        if release is None and newest is not None:
            try:
                release = Release.from_json_bytes(self.store.get(release_key(page.name, newest))[1])
            except NotFound:
                release = None
        html = render_project_site(page, release)
        self.write_if_newer(project_site_key(page.name), html, page.serial)

    def note_uploads(self, page: ProjectPage, filenames: list[str]) -> None:
        uploads = [
            Upload(page.name, page.display_name, f.version, f.filename, f.upload_time)
            for f in page.files
            if f.filename in filenames
        ]
        if uploads:
            self.update_site(uploads=uploads)

    def update_site(self, projects: int | None = None, uploads: list[Upload] | None = None) -> None:
        """Compare-and-swap the landing page's manifest, then render the page from it."""
        for _ in range(MAX_ATTEMPTS):
            try:
                info, raw = self.store.get(SITE_JSON_KEY)
                summary, etag = SiteSummary.from_json_bytes(raw), info.etag
            except NotFound:
                summary, etag = SiteSummary(), None
            new = summary.with_uploads(uploads or [])
            if projects is not None:
                new = new.with_projects(projects)
            if new is not summary or etag is None:
                try:
                    if etag is None:
                        self.store.put(SITE_JSON_KEY, new.to_json_bytes(), if_none_match=True)
                    else:
                        self.store.put(SITE_JSON_KEY, new.to_json_bytes(), if_match=etag)
                except PreconditionFailed:
                    continue
            self.write_if_newer(LANDING_KEY, render_landing(new), new.serial)
            return
        raise RuntimeError(f"gave up updating the landing page after {MAX_ATTEMPTS} conflicts")
