"""The project page model. Its PEP 691 JSON form is also the project's manifest in storage.

Private, ``_``-prefixed keys (allowed by PEP 691) carry what the indexer needs and clients ignore:
the storage key of each file, the ETag it was indexed at, the display name and a serial that
orders page writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, Final, NamedTuple
from urllib.parse import quote

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from skypi.core.errors import reading
from skypi.core.keys import HELD_PREFIX as HELD_PREFIX
from skypi.core.keys import PACKAGES_PREFIX as PACKAGES_PREFIX
from skypi.core.keys import ROOT_HTML_KEY as ROOT_HTML_KEY
from skypi.core.keys import ROOT_JSON_KEY as ROOT_JSON_KEY
from skypi.core.keys import SIMPLE_PREFIX as SIMPLE_PREFIX
from skypi.core.keys import file_key as file_key
from skypi.core.keys import held_files_key as held_files_key
from skypi.core.keys import html_twins as html_twins
from skypi.core.keys import metadata_key as metadata_key
from skypi.core.keys import page_html_key as page_html_key
from skypi.core.keys import page_json_key as page_json_key

# 1.1 PEP 700, 1.3 PEP 740 (provenance), 1.4 PEP 792 (status), 1.5 PEP 752 (namespaces): the
# JSON pages'. PEP 752 adds nothing to HTML, and PEP 833 freezes HTML at 1.4.
API_VERSION: Final = "1.5"
HTML_API_VERSION: Final = "1.4"


class NamespaceEntry(NamedTuple):
    """PEP 752: a namespace that covers a project, whether the project is its owner's (False:
    the project predates it), and the owner's name (kept as ``_owner``: the pages for people
    show it)."""

    name: str
    owned: bool
    owner: str = ""


NamespaceEntries = tuple[NamespaceEntry, ...] | None  # None: no namespace covers the project
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


class ProjectStatus(StrEnum):
    """PEP 792: what a project's status may be. Its value is how pages spell it."""

    ACTIVE = "active"
    ARCHIVED = "archived"
    DEPRECATED = "deprecated"
    QUARANTINED = "quarantined"


# as text, for what lists them to people (argparse shows the repr of an enum's members)
PROJECT_STATUSES: Final = tuple(status.value for status in ProjectStatus)
NO_UPLOADS: Final = frozenset({ProjectStatus.ARCHIVED, ProjectStatus.QUARANTINED})  # refuse files
MAX_STATUS_REASON: Final = 1000


def check_reason(reason: str | None) -> str | None:
    """The one rule for a reason an admin gives (a status's, PEP 792; a yank's, PEP 592):
    stripped, None when empty, ValueError unless printable and at most 1,000 characters.

    >>> check_reason(" moved to foo2 "), check_reason("  ")
    ('moved to foo2', None)
    """
    reason = (reason or "").strip() or None
    if reason is not None and (len(reason) > MAX_STATUS_REASON or not reason.isprintable()):
        raise ValueError(
            f"the reason must be printable text of at most {MAX_STATUS_REASON} characters"
        )
    return reason


def check_status(status: str, reason: str | None) -> tuple[ProjectStatus, str | None]:
    """A valid (status, reason) pair, or ValueError naming the valid statuses.

    >>> check_status("archived", " moved to foo2 ")
    (<ProjectStatus.ARCHIVED: 'archived'>, 'moved to foo2')
    """
    if status not in PROJECT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(PROJECT_STATUSES)}; got {status!r}")
    return ProjectStatus(status), check_reason(reason)


@lru_cache(maxsize=65536)
def file_href(file_key: str) -> str:
    """The link from ``/simple/<project>/`` to a stored file: relative, every segment quoted.

    >>> file_href("packages/foo/foo-1.0+cpu-py3-none-any.whl")
    '../../packages/foo/foo-1.0%2Bcpu-py3-none-any.whl'
    """
    return "../../" + "/".join(quote(part, safe="") for part in file_key.split("/"))


@lru_cache(maxsize=65536)
def format_time(moment: datetime) -> str:
    """UTC with exactly six fractional digits and a ``Z``: what uv and pip both accept."""
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time` (fast: pages of thousands of files are read on
    every upload).

    >>> parse_time("2026-01-02T03:04:05.000006Z")
    datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
    """
    if len(text) == 27 and text.endswith("Z"):
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


@lru_cache(maxsize=65536)
def parse_version(text: str) -> Version:
    """A listed version, parsed once per process (pages sort thousands of them)."""
    return Version(text)


def _prerelease(version: str) -> bool:
    try:
        return parse_version(version).is_prerelease
    except InvalidVersion:  # pragma: no cover - versions are validated on the way in
        return False


@dataclass(frozen=True)
class FileEntry:
    """One distribution file as listed on its project page."""

    filename: str
    key: str
    version: str
    sha256: str
    size: int
    upload_time: datetime
    requires_python: str | None = None
    metadata_sha256: str | None = None  # set when a PEP 658 ``.metadata`` file exists
    yanked: str | None = None  # None: not yanked; "" yanked without a reason
    etag: str = ""  # the storage ETag this entry was indexed at (replays compare it)
    provenance: str | None = None  # PEP 740: the provenance URL, relative to the page
    url: str | None = None  # an absolute link elsewhere (a view's ``files = "link"``)

    @property
    def href(self) -> str:
        """Where the page links to the file: its own URL, else the stored file's."""
        return self.url or file_href(self.key)

    @property
    def sort_key(self) -> tuple[bool, Version | str, str]:
        """Oldest first. A version that is none (versions are checked on the way in, but a
        stored page may be edited by hand) sorts before every real one, by its text, instead
        of making the whole page unsortable."""
        try:
            return (True, parse_version(self.version), self.filename)
        except InvalidVersion:
            return (False, self.version, self.filename)

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "filename": self.filename,
            "url": self.href,
            "hashes": {"sha256": self.sha256},
            "requires-python": self.requires_python,
            "size": self.size,
            "upload-time": format_time(self.upload_time),
            "yanked": False if self.yanked is None else (self.yanked or True),
            "provenance": self.provenance,
        }
        if self.metadata_sha256:
            entry["core-metadata"] = {"sha256": self.metadata_sha256}
        entry["_key"] = self.key
        entry["_version"] = self.version
        entry["_etag"] = self.etag
        if self.url:
            entry["_linked"] = True
        return entry

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileEntry:
        yanked = data.get("yanked", False)
        core = data.get("core-metadata")
        return cls(
            filename=data["filename"],
            key=data["_key"],
            version=data["_version"],
            sha256=data["hashes"]["sha256"],
            size=int(data["size"]),
            upload_time=parse_time(data["upload-time"]),
            requires_python=data.get("requires-python") or None,
            metadata_sha256=core["sha256"] if isinstance(core, dict) else None,
            yanked=None if yanked is False else ("" if yanked is True else str(yanked)),
            etag=data.get("_etag", ""),
            provenance=data.get("provenance") or None,
            url=data["url"] if data.get("_linked") else None,
        )


def _compact(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


@lru_cache(maxsize=32768)  # about 30 MB at most: a few busy projects' entries
def _entry_text(entry: FileEntry) -> str:
    return _compact(entry.to_json())


def _entries_text(entries: list[FileEntry]) -> str:
    return "[" + ",".join(_entry_text(e) for e in entries) + "]"


def held_digest(held: bytes) -> str:
    """The name a page gives its held files by: their SHA-256."""
    return hashlib.sha256(held).hexdigest()


@dataclass(frozen=True)
class ProjectPage:
    """A project's files. Immutable: changes return a new page with the serial bumped."""

    name: NormalizedName
    display_name: str
    files: tuple[FileEntry, ...] = ()
    serial: int = 0
    summary: str = ""  # the newest release's summary (pages for people; search)
    status: ProjectStatus = ProjectStatus.ACTIVE  # PEP 792
    status_reason: str | None = None
    namespaces: NamespaceEntries = None  # PEP 752

    @classmethod
    def empty(cls, display_name: str) -> ProjectPage:
        return cls(canonicalize_name(display_name), display_name)

    def sorted_files(self) -> list[FileEntry]:
        return sorted(self.files, key=lambda f: f.sort_key)

    def withholds_files(self) -> bool:
        """PEP 792: a quarantined project offers no file for download (nor lists any)."""
        return self.status == ProjectStatus.QUARANTINED

    def listed_files(self) -> list[FileEntry]:
        """What the page shows: nothing while quarantined (PEP 792); the files stay known (in
        the held files beside the page), so lifting the quarantine lists them again."""
        return [] if self.withholds_files() else self.sorted_files()

    def upload_refusal(self) -> str | None:
        """Why this project takes no new files (PEP 792: archived, quarantined), or None."""
        if self.status not in NO_UPLOADS:
            return None
        why = f": {self.status_reason}" if self.status_reason else ""
        return (
            f"Project {self.display_name!r} is {self.status}{why}. It takes no new uploads "
            f"until an admin sets it active again (skypi status {self.name} active)."
        )

    def with_status(self, status: ProjectStatus, reason: str | None) -> ProjectPage:
        """The page with this status and reason (as :func:`check_status` gives them)."""
        return replace(self, status=status, status_reason=reason, serial=self.serial + 1)

    def with_namespaces(self, namespaces: NamespaceEntries) -> ProjectPage:
        """The page saying which namespaces cover it (PEP 752); itself if that is unchanged."""
        if namespaces == self.namespaces:
            return self
        return replace(self, namespaces=namespaces, serial=self.serial + 1)

    def namespaces_json(self) -> list[dict[str, Any]] | None:
        """PEP 752's ``namespaces`` key: null, or ``{"name", "owned"}`` per namespace."""
        if self.namespaces is None:
            return None
        return [
            {"name": n.name, "owned": n.owned} | ({"_owner": n.owner} if n.owner else {})
            for n in self.namespaces
        ]

    def versions(self) -> list[str]:
        """Every version with a file, oldest first."""
        return list(dict.fromkeys(f.version for f in self.sorted_files()))

    @cached_property
    def latest_version(self) -> str | None:
        """The version the page describes: the newest final release that is not yanked, else
        the newest not yanked, else the newest. Worked out once per page: the plan that makes
        the page, its writer and its page for people all ask.

        >>> now = datetime.now(UTC)
        >>> f = lambda v, y=None: FileEntry(f"a-{v}.tar.gz", "k", v, "0", 1, now, yanked=y)
        >>> ProjectPage("a", "a", (f("1.0"), f("2.0b1"), f("1.5", "bad"))).latest_version
        '1.0'
        """
        versions = self.versions()[::-1]
        unyanked = {f.version for f in self.files if f.yanked is None}
        live = [v for v in versions if v in unyanked]
        final = [v for v in live if not _prerelease(v)]
        return next(iter(final or live or versions), None)

    def with_summary(self, summary: str) -> ProjectPage:
        """The page with its newest release's summary: the same files, so the same newest
        version, which is not worked out again."""
        new = replace(self, summary=summary)
        if "latest_version" in self.__dict__:
            new.__dict__["latest_version"] = self.__dict__["latest_version"]
        return new

    def find(self, filename: str) -> FileEntry | None:
        return next((f for f in self.files if f.filename == filename), None)

    def with_files(self, files: tuple[FileEntry, ...]) -> ProjectPage:
        ordered = tuple(sorted(files, key=lambda f: f.sort_key))
        return replace(self, files=ordered, serial=self.serial + 1)

    def project_status(self) -> dict[str, str]:
        """PEP 792's top-level ``project-status`` object."""
        reason = {"reason": self.status_reason} if self.status_reason else {}
        return {"status": self.status, **reason}

    def to_json_bytes(self) -> bytes:
        """The PEP 691 page, compact. Each entry's JSON is made once per process and reused:
        a page of thousands of files is written on every upload to it.

        >>> page = ProjectPage.empty("demo")
        >>> json.loads(page.to_json_bytes()) == page.to_json_doc()
        True
        """
        listed = self.listed_files()
        head = _compact(
            {
                "meta": {"api-version": API_VERSION, "_last-serial": self.serial},
                "name": self.name,
                "project-status": self.project_status(),
                "namespaces": self.namespaces_json(),
                "versions": self.versions() if listed else [],
            }
        )
        tail: dict[str, Any] = {"_display-name": self.display_name}
        if self.summary:
            tail["_summary"] = self.summary
        parts = [head[:-1], ',"files":', _entries_text(listed), ",", _compact(tail)[1:-1]]
        if (held := self.held_files()) is not None:
            parts += [',"_held":', json.dumps(held_digest(held))]
        return ("".join(parts) + "}\n").encode()

    def held_files(self) -> bytes | None:
        """The entries a quarantined page does not list, to be stored under
        :func:`held_files_key` before the page that names them; None when it lists them."""
        if self.listed_files() or not self.files:
            return None
        return _entries_text(self.sorted_files()).encode()

    def to_json_doc(self) -> dict[str, Any]:
        """:meth:`to_json_bytes` as the document it encodes (the plain, slower way)."""
        listed = self.listed_files()
        doc: dict[str, Any] = {
            "meta": {"api-version": API_VERSION, "_last-serial": self.serial},
            "name": self.name,
            "project-status": self.project_status(),
            "namespaces": self.namespaces_json(),
            "versions": self.versions() if listed else [],
            "files": [f.to_json() for f in listed],
            "_display-name": self.display_name,
        }
        if self.summary:
            doc["_summary"] = self.summary
        if (held := self.held_files()) is not None:
            doc["_held"] = held_digest(held)
        return doc

    @classmethod
    def from_json_bytes(cls, raw: bytes, held: Callable[[str], bytes] | None = None) -> ProjectPage:
        """The page ``raw`` encodes, with the files its quarantine holds (``held(digest)``:
        the bytes stored under :func:`held_files_key`). Pages written before the held files
        had their key carry them as ``_quarantined-files``. :class:`CorruptDocument` if
        ``raw`` is not a page (one edited by hand, or damaged, cannot be read: never a
        crash)."""
        with reading("a project page"):
            doc = json.loads(raw)
            status = doc.get("project-status") or {}
            files = doc["files"] + doc.get("_quarantined-files", [])
            if "_held" in doc:
                if held is None:
                    raise ValueError(f"the page of {doc['name']} holds files elsewhere: give held")
                files += json.loads(held(doc["_held"]))
            return cls(
                name=canonicalize_name(doc["name"]),
                display_name=doc.get("_display-name") or doc["name"],
                files=tuple(FileEntry.from_json(f) for f in files),
                serial=int(doc["meta"].get("_last-serial", 0)),
                summary=str(doc.get("_summary", "")),
                status=ProjectStatus(status.get("status", "active")),
                status_reason=status.get("reason"),
                namespaces=_namespace_entries(doc.get("namespaces")),
            )


class RootEntry(NamedTuple):
    """How the root listing shows one project: its display name (None when the project has no
    file to show, and leaves the listing) and its summary (for search)."""

    display: str | None
    summary: str = ""


def root_entry(page: ProjectPage | None) -> RootEntry:
    """How the root listing shows ``page`` (None: there is no page).

    >>> root_entry(None)
    RootEntry(display=None, summary='')
    """
    if page is None or not page.files:
        return RootEntry(None, "")
    return RootEntry(page.display_name, page.summary)


@dataclass(frozen=True)
class PendingEntry:
    """A project whose appearance, removal or summary the root listing does not show yet:
    how its page shows it, and the ETag of that page (None: not known), recorded until a
    rebuild merges it into the listing (``skypi.indexer.deferred``).

    >>> raw = PendingEntry(RootEntry("Foo", "A tool"), "e1").to_json_bytes()
    >>> raw
    b'{"display":"Foo","summary":"A tool","seen":"e1"}'
    >>> PendingEntry.from_json_bytes(raw).entry
    RootEntry(display='Foo', summary='A tool')
    """

    entry: RootEntry
    seen: str | None = None

    def to_json_bytes(self) -> bytes:
        doc = {"display": self.entry.display, "summary": self.entry.summary, "seen": self.seen}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> PendingEntry:
        """A stored record; :class:`CorruptDocument` if ``raw`` is not one."""
        with reading("a pending root entry"):
            doc = json.loads(raw)
            display, summary, seen = doc["display"], doc["summary"], doc["seen"]
            if not isinstance(display, str | None) or not isinstance(summary, str):
                raise TypeError("display must be a string or null, summary a string")
            if not isinstance(seen, str | None):
                raise TypeError("seen must be a string or null")
            return cls(RootEntry(display, summary), seen)


def _namespace_entries(found: Any) -> NamespaceEntries:
    """A stored page's ``namespaces`` (None in pages written before 1.5)."""
    if found is None:
        return None
    return tuple(
        NamespaceEntry(str(n["name"]), bool(n["owned"]), str(n.get("_owner", ""))) for n in found
    )


@dataclass(frozen=True)
class RootListing:
    """The root page: every project that has at least one file, by normalized name."""

    projects: dict[NormalizedName, str] = field(default_factory=dict)  # name -> display name
    serial: int = 0
    summaries: dict[NormalizedName, str] = field(default_factory=dict)  # for search

    def with_projects(self, changes: Mapping[NormalizedName, RootEntry]) -> RootListing:
        """Add (a display name given) or remove (None) many projects at once (one copy, one
        serial); the same object if nothing changes."""
        projects, summaries = dict(self.projects), dict(self.summaries)
        for name, (display, summary) in changes.items():
            if display is None:
                projects.pop(name, None)
                summaries.pop(name, None)
            else:
                # The listing stores the name only, and a reader normalizes it: a display
                # name that is not this project's (a page edited by hand) shows the project.
                projects[name] = display if canonicalize_name(display) == name else name
                summaries[name] = summary
        summaries = {k: v for k, v in summaries.items() if v}
        if projects == self.projects and summaries == self.summaries:
            return self
        return RootListing(projects, self.serial + 1, summaries)

    def to_json_bytes(self) -> bytes:
        """PEP 691's root: each project's name, and its summary (``_summary``) for the
        search box of the pages for people. No normalized name: it is the name's, by PEP
        503's rule, which a reader applies (it cost a quarter of the listing's bytes).

        >>> RootListing({NormalizedName("a-b"): "A_B"}, 3).to_json_bytes()
        b'{"meta":{"api-version":"1.5","_last-serial":3},"projects":[{"name":"A_B"}]}\\n'
        """
        doc = {
            "meta": {"api-version": API_VERSION, "_last-serial": self.serial},
            "projects": [
                {"name": self.projects[name]}
                | ({"_summary": self.summaries[name]} if self.summaries.get(name) else {})
                for name in sorted(self.projects)
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> RootListing:
        """The stored listing; :class:`CorruptDocument` if ``raw`` is not one. A listing
        stored by an earlier version also gives each normalized name (``_normalized``): the
        name's own, so it is not read."""
        with reading("the root listing"):
            doc = json.loads(raw)
            projects = {canonicalize_name(p["name"]): p["name"] for p in doc["projects"]}
            summaries = {
                canonicalize_name(p["name"]): str(p["_summary"])
                for p in doc["projects"]
                if p.get("_summary")
            }
            return cls(projects, int(doc["meta"].get("_last-serial", 0)), summaries)
