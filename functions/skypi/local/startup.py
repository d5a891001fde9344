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
   ``.metadata`` file is made again from its wheel, an HTML page whose serial lags its JSON
   page (a write cut short by a crash) is rendered again; then the root listing is made to
   agree with those projects.
4. The fingerprints of everything checked are recorded for the next start.

Without a record (the first start, an older skypi, a deleted state file) every project is
checked: that is adoption of a folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from packaging.utils import NormalizedName

from skypi.core.errors import InvalidDistribution
from skypi.core.pages import (
    PACKAGES_PREFIX,
    ROOT_HTML_KEY,
    ROOT_JSON_KEY,
    SIMPLE_PREFIX,
    html_twins,
    metadata_key,
    page_html_key,
    page_json_key,
)
from skypi.core.render import html_serial, render_project_html, render_root_html
from skypi.core.site import LANDING_KEY, project_site_key
from skypi.indexer.service import Change, Gone, Indexer, Landed, Outcome, project_of_key
from skypi.store.base import NotFound
from skypi.store.local import METADATA_SUFFIX, Fingerprint, LocalStore, package_etag

log = logging.getLogger("skypi.startup")
FINGERPRINTS_KEY = "local/fingerprints.json"
FORMAT = 1
ROOT = "(root)"
JUNK = ""  # files under the folder that are no distribution


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


def _load(store: LocalStore) -> tuple[dict[str, Fingerprint], dict[str, str]]:
    """The recorded fingerprints and the project of each recorded distribution key."""
    try:
        doc = json.loads(store.get(FINGERPRINTS_KEY)[1])
        if doc.get("format") != FORMAT:
            return {}, {}
        files = doc["files"]
        return (
            {key: (int(v[0]), int(v[1])) for key, v in files.items()},
            {key: v[2] for key, v in files.items() if len(v) > 2},
        )
    except (NotFound, ValueError, KeyError, TypeError, IndexError):
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
    shown: dict[NormalizedName, str | None] = {}
    for project in sorted(dirty):
        name = NormalizedName(project)
        dists = by_project.get(project, [])
        shown[name] = _check_project(store, indexer, name, dists, current, recorded, report)
        report.projects_checked += 1
        if progress:
            progress(max(1, len(by_project.get(project, []))))
    if shown or checked_root:
        _check_root(indexer, shown, report)
    if dirty or checked_root or recorded.keys() != current.keys():
        _record(store, projects, dirty | ({ROOT} if checked_root else set()), current)
    return report


def _check_project(
    store: LocalStore,
    indexer: Indexer,
    project: NormalizedName,
    dist_keys: list[str],
    current: dict[str, Fingerprint],
    recorded: dict[str, Fingerprint],
    report: StartReport,
) -> str | None:
    """Bring one project's page, its ``.metadata`` files and HTML twins in line with the
    folder; returns the name it should have in the root listing (None: not listed)."""
    try:
        page, _ = indexer.read_page(project)
    except (ValueError, KeyError, TypeError):
        log.warning("the page of %s cannot be read; run `skypi reindex` to rebuild it", project)
        report.unreadable_pages.append(project)
        return None
    entries = {f.key: f for f in page.files} if page else {}
    changes: list[Change] = [
        Landed(key)
        for key in sorted(dist_keys)
        if key not in entries or entries[key].etag != package_etag(current[key])
    ]
    changes += [Gone(key) for key in sorted(entries) if key not in current]
    if changes:
        report.outcome.merge(indexer.apply(changes))
        page, _ = indexer.read_page(project)
    if page is None:
        return None
    for entry in page.files:
        if not entry.metadata_sha256:
            continue
        key = metadata_key(entry.key)
        if key in current and current[key] == recorded.get(key):
            continue
        try:
            intact = hashlib.sha256(store.get(key)[1]).hexdigest() == entry.metadata_sha256
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
    html = None
    for key in html_twins(page_html_key(project)):
        try:
            serial = html_serial(store.get(key)[1])
        except NotFound:
            serial = -1
        if serial < page.serial:
            html = html or render_project_html(page)
            indexer.write_if_newer(key, html, page.serial, repair=True)
            report.pages_rerendered.append(key)
    _repair_variants(indexer, (page_json_key(project), *html_twins(page_html_key(project))))
    if page.files and store.head(project_site_key(project)) is None:  # an older skypi's folder
        indexer.write_project_site(page)
    return page.display_name if page.files else None


def _repair_variants(indexer: Indexer, keys: Iterable[str]) -> None:
    """Give each checked page its gzip variant: made again when missing, stale or altered
    (a folder indexed by an older skypi has none)."""
    for key in keys:
        indexer.sync_variant(key, repair=True)


def _check_root(
    indexer: Indexer, shown: dict[NormalizedName, str | None], report: StartReport
) -> None:
    try:
        root, etag = indexer.read_root()
    except (ValueError, KeyError, TypeError):
        log.warning("the root listing cannot be read; run `skypi reindex` to rebuild it")
        report.unreadable_pages.append(ROOT)
        return
    if etag is None:
        indexer.sync_root()
    for project, display in sorted(shown.items()):
        if root.projects.get(project) != display:
            indexer.sync_root(project)
    root, _ = indexer.read_root()
    html = render_root_html(root)
    for key in html_twins(ROOT_HTML_KEY):
        try:
            serial = html_serial(indexer.store.get(key)[1])
        except NotFound:
            serial = -1
        if serial < root.serial:
            indexer.write_if_newer(key, html, root.serial, repair=True)
            report.pages_rerendered.append(key)
    _repair_variants(indexer, (ROOT_JSON_KEY, *html_twins(ROOT_HTML_KEY)))
    if indexer.store.head(LANDING_KEY) is None:
        indexer.update_site(projects=len(root.projects))


def _record(
    store: LocalStore, projects: dict[str, str], checked: set[str], current: dict[str, Fingerprint]
) -> None:
    """Record fingerprints: those of checked projects as they are now (after any repair), the
    others' as the walk found them (they were trusted, and nothing here wrote to them)."""
    now = current
    if checked:
        found, _ = store.scan()
        now = {key: (st.st_size, st.st_mtime_ns) for key, _, st in found}
    files: dict[str, list[object]] = {}
    for key in now.keys() | current.keys():
        if not key.startswith((PACKAGES_PREFIX, SIMPLE_PREFIX)):
            continue
        source = now if _project_of(key, projects) in checked else current
        if key in source:
            files[key] = [*source[key], *([projects[key]] if key in projects else [])]
    body = json.dumps({"format": FORMAT, "files": files}, separators=(",", ":")).encode()
    store.put(FINGERPRINTS_KEY, body)


__all__ = ["FINGERPRINTS_KEY", "StartReport", "reconcile"]
