"""What a view lists of a project, and why: the policy as a pure function.

Inputs: whether the name is private (a page in this index, with or without files) or reserved
(a namespace covers it), the upstream's PEP 691 page, the time, the view's policy and the
index's OSV data. Output: the view's page (a :class:`~skypi.core.pages.ProjectPage`, rendered
by the same code as the private pages), one verdict per upstream file with its reason, and
when the page next changes by time alone (a cooldown ending, an exception expiring).

Private names always win: a private or reserved name is never taken from upstream, whatever
upstream has (docs/views.md).

>>> from datetime import UTC, date, datetime, timedelta
>>> from skypi.core.views import parse_policy
>>> policy = parse_policy("safe", {"upstream": "https://up.example/simple/", "cooldown-days": 7})
>>> page = parse_upstream_page(b'{"meta": {"api-version": "1.1"}, "name": "demo", "files": ['
...     b'{"filename": "demo-1.0.tar.gz", "url": "../../f/demo-1.0.tar.gz", "size": 3,'
...     b' "hashes": {"sha256": "' + b"ab" * 32 + b'"}, "upload-time": "2026-01-01T00:00:00Z"}]}',
...     "https://up.example/simple/demo/")
>>> out = evaluate(policy, "demo", page, datetime(2026, 1, 3, tzinfo=UTC))
>>> out.verdicts[0].reason, out.next_change
(<Reason.COOLDOWN: 'cooldown'>, datetime.datetime(2026, 1, 8, 0, 0, tzinfo=datetime.timezone.utc))
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

from packaging.utils import NormalizedName, canonicalize_name

from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import parse_filename
from skypi.core.keys import METADATA_SUFFIX, VIEW_FILES, is_sha256
from skypi.core.namespaces import Namespaces
from skypi.core.osv import Advisory, OsvData
from skypi.core.pages import PROJECT_STATUSES, FileEntry, ProjectPage, ProjectStatus, format_time
from skypi.core.render import HeldBack
from skypi.core.severity import at_least
from skypi.core.views import ViewPolicy

MAX_FILES: Final = 100_000  # more files than any project on PyPI has
# PEP 700: ``yyyy-mm-ddThh:mm:ss`` with optional fraction and a ``Z``; an offset is read too.
_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


class UpstreamError(ValueError):
    """The upstream answered with something that is not a PEP 691 project page."""


class Reason(enum.StrEnum):
    """Why a file is listed by a view or not (``skypi view explain``)."""

    LISTED = "listed"
    YANKED = "yanked"  # listed, with upstream's yank marker (PEP 592: kept, never dropped)
    PRIVATE = "private"  # the name is this index's: upstream's files are never shown
    RESERVED = "reserved"  # a namespace of this index covers the name
    COOLDOWN = "cooldown"  # younger than the view's cooldown
    UNTIMED = "untimed"  # upstream gives no upload time: not listed (fail closed)
    DENY_LIST = "deny-list"
    NOT_ALLOWED = "not-allowed"  # an allow-list is given and does not name it
    MALWARE = "malware"  # an OSV MAL- record covers it
    ADVISORY = "advisory"  # an OSV record the policy blocks by covers it
    SEVERITY = "severity"  # an OSV record rated at or above the policy's block-severity
    STATUS = "status"  # upstream's PEP 792 status offers no files (quarantined)
    PINNED = "pinned"  # uploaded after the date of a time-pinned form
    UNVERIFIABLE = "unverifiable"  # no SHA-256, or a name that is no distribution of it
    FILE_HOST = "file-host"  # its URL is on a host the view does not fetch from
    MISMATCH = "mismatch"  # upstream served other bytes than the SHA-256 its page gives


LISTING: Final = frozenset({Reason.LISTED, Reason.YANKED})
# The verdicts under which a view keeps the copy of an upstream file it cached: the file is
# listed (yanked or not), or held back by time alone (a cooldown ends by itself; a pin's date
# only narrows what the view lists). Every other verdict comes from a flag on the file or its
# project (a name this index has, upstream's quarantine, an OSV record, the deny- or
# allow-list, a missing hash, time or file host) that every form of the view applies, its
# time-pinned forms included: while it stands no form lists the file, so its copy is deleted
# (:func:`purged`, docs/views.md).
KEPT_CACHED: Final = frozenset({*LISTING, Reason.COOLDOWN, Reason.PINNED})


@dataclass(frozen=True)
class UpstreamFile:
    """One file of an upstream page, as upstream describes it."""

    filename: str
    url: str  # absolute
    sha256: str | None
    size: int | None = None
    upload_time: datetime | None = None
    yanked: str | None = None
    requires_python: str | None = None
    metadata_sha256: str | None = None
    # Not upstream's word but the view's: the bytes upstream served for this file (or its
    # .metadata) had another SHA-256 than its page gives, so no form of the view lists it
    # while upstream's page stays as it is (a changed page is read afresh, without this).
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        refused = {"refused": self.refused} if self.refused is not None else {}
        return {
            "filename": self.filename,
            "url": self.url,
            "sha256": self.sha256,
            "size": self.size,
            "upload-time": format_time(self.upload_time) if self.upload_time else None,
            "yanked": self.yanked,
            "requires-python": self.requires_python,
            "metadata-sha256": self.metadata_sha256,
        } | refused

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpstreamFile:
        moment = data["upload-time"]
        return cls(
            data["filename"],
            data["url"],
            data["sha256"],
            data["size"],
            _upload_time(moment) if moment else None,
            data["yanked"],
            data["requires-python"],
            data["metadata-sha256"],
            _optional_text(data.get("refused")),
        )


@dataclass(frozen=True)
class UpstreamPage:
    """An upstream project page, checked: what a view is made from (and kept, so a view's
    page is made again when time passes without asking upstream)."""

    name: NormalizedName
    files: tuple[UpstreamFile, ...] = ()
    status: str = "active"
    status_reason: str | None = None

    def find(self, filename: str) -> UpstreamFile | None:
        return next((f for f in self.files if f.filename == filename), None)

    def refusing(self, filename: str, why: str) -> UpstreamPage | None:
        """This page with ``filename`` marked refused for ``why``; None when it has no such
        file (upstream's page changed since the file was asked for)."""
        if self.find(filename) is None:
            return None
        files = tuple(replace(f, refused=why) if f.filename == filename else f for f in self.files)
        return replace(self, files=files)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "status-reason": self.status_reason,
            "files": [f.to_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpstreamPage:
        files = tuple(UpstreamFile.from_json(f) for f in data["files"])
        return cls(canonicalize_name(data["name"]), files, data["status"], data["status-reason"])


def _upload_time(text: Any) -> datetime | None:
    """PEP 700's ``upload-time``; None when absent or not in its format (untimed)."""
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _optional_text(value: Any, limit: int = 1000) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _upstream_file(entry: Any, page_url: str) -> UpstreamFile | None:
    """One ``files`` entry of a PEP 691 page; None when it cannot even be named."""
    if not isinstance(entry, Mapping):
        return None
    filename, url = entry.get("filename"), entry.get("url")
    if not isinstance(filename, str) or not isinstance(url, str) or len(filename) > 255:
        return None
    absolute = urljoin(page_url, url).split("#", 1)[0]
    if urlsplit(absolute).scheme not in {"http", "https"}:
        return None
    hashes = entry.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, Mapping) else None
    core = entry.get("core-metadata", entry.get("dist-info-metadata"))
    meta = core.get("sha256") if isinstance(core, Mapping) else None
    yanked = entry.get("yanked", False)
    size = entry.get("size")
    return UpstreamFile(
        filename=filename,
        url=absolute,
        sha256=sha256.lower() if isinstance(sha256, str) and is_sha256(sha256.lower()) else None,
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        upload_time=_upload_time(entry.get("upload-time")),
        yanked=None
        if yanked is False or yanked is None
        else ("" if yanked is True else str(yanked)),
        requires_python=_optional_text(entry.get("requires-python")),
        metadata_sha256=meta.lower() if isinstance(meta, str) and is_sha256(meta.lower()) else None,
    )


def parse_upstream_page(raw: bytes, page_url: str) -> UpstreamPage:
    """A PEP 691 JSON project page from upstream (relative URLs resolved against
    ``page_url``); :class:`UpstreamError` when it is not one."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise UpstreamError(f"the upstream page is not JSON: {exc}") from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("files"), list):
        raise UpstreamError("the upstream page is not a PEP 691 project page (no files)")
    meta = doc.get("meta")
    version = meta.get("api-version") if isinstance(meta, Mapping) else None
    if not isinstance(version, str) or not version.startswith("1."):
        raise UpstreamError(f"the upstream page speaks API version {version!r}, not 1.x")
    if not isinstance(doc.get("name"), str) or len(doc["files"]) > MAX_FILES:
        raise UpstreamError("the upstream page has no name, or too many files")
    status_doc = doc.get("project-status")
    status = status_doc.get("status") if isinstance(status_doc, Mapping) else None
    reason = status_doc.get("reason") if isinstance(status_doc, Mapping) else None
    files: dict[str, UpstreamFile] = {}
    for entry in doc["files"]:
        found = _upstream_file(entry, page_url)
        if found is not None:
            files.setdefault(found.filename, found)  # a filename twice: the first counts
    return UpstreamPage(
        canonicalize_name(doc["name"]),
        tuple(files.values()),
        status if status in PROJECT_STATUSES else "active",
        _optional_text(reason),
    )


@dataclass(frozen=True)
class FileVerdict:
    """One upstream file's fate in a view."""

    filename: str
    version: str
    reason: Reason
    detail: str = ""
    until: datetime | None = None  # when a cooldown lets it in

    @property
    def listed(self) -> bool:
        return self.reason in LISTING

    def held_back(self) -> HeldBack:
        """The row of the view's HTML page for a file it does not list."""
        reason = self.reason.value
        if self.until is not None:
            reason += f" until {format_time(self.until)}"
        return HeldBack(self.filename, self.version, reason, self.detail)

    def to_json(self) -> dict[str, Any]:
        until = {"until": format_time(self.until)} if self.until else {}
        return {
            "filename": self.filename,
            "version": self.version,
            "listed": self.listed,
            "reason": self.reason.value,
            "detail": self.detail,
        } | until


@dataclass(frozen=True)
class ViewOutcome:
    """What a view shows of one project: its page (None: the view has none to show: the name
    is private or reserved, or every file is denied), each upstream file's verdict, and when
    the page changes by time alone (None: not by time)."""

    page: ProjectPage | None
    verdicts: tuple[FileVerdict, ...] = ()
    next_change: datetime | None = None
    origin: Reason = Reason.LISTED  # PRIVATE or RESERVED when the name is this index's
    notes: tuple[str, ...] = field(default=())


def origin(project: str, private: bool, namespaces: Namespaces) -> tuple[Reason, str] | None:
    """Why ``project`` is this index's and never upstream's, or None when a view may show
    upstream's files for it.

    >>> from skypi.core.namespaces import Namespace
    >>> ns = Namespaces((Namespace.create("acme", owner="platform"),))
    >>> origin("acme-tools", False, ns)[0], origin("demo", True, ns)[0], origin("demo", False, ns)
    (<Reason.RESERVED: 'reserved'>, <Reason.PRIVATE: 'private'>, None)
    """
    if private:
        return Reason.PRIVATE, "the name is published in this index"
    covering = namespaces.covering(project)
    if covering:
        ns = covering[-1]
        return Reason.RESERVED, f"the namespace {ns.name!r} of this index ({ns.owner}) covers it"
    return None


def _verdict(
    policy: ViewPolicy,
    project: str,
    upstream: UpstreamPage,
    file: UpstreamFile,
    now: datetime,
    osv: OsvData,
    pin: datetime | None = None,
) -> FileVerdict:
    """One file's verdict; the checks go from what no exception lifts to the cooldown."""
    try:
        dist = parse_filename(file.filename)
    except InvalidDistribution as exc:
        return FileVerdict(file.filename, "", Reason.UNVERIFIABLE, str(exc))
    version = str(dist.version)
    if dist.project != project or file.filename.startswith(".") or "/" in file.filename:
        return FileVerdict(
            file.filename, version, Reason.UNVERIFIABLE, "not a file of this project"
        )
    if file.sha256 is None:
        return FileVerdict(file.filename, version, Reason.UNVERIFIABLE, "upstream gives no SHA-256")
    if file.refused is not None:
        return FileVerdict(file.filename, version, Reason.MISMATCH, file.refused)
    if (host := urlsplit(file.url).netloc.lower()) not in policy.file_hosts:
        detail = f"its URL is on {host}, not a host this view fetches from (file-hosts)"
        return FileVerdict(file.filename, version, Reason.FILE_HOST, detail)
    if upstream.status == "quarantined":
        why = f": {upstream.status_reason}" if upstream.status_reason else ""
        return FileVerdict(file.filename, version, Reason.STATUS, f"upstream quarantined it{why}")
    if (advised := _advisory_verdict(policy, osv, project, file.filename, version)) is not None:
        return advised
    if (rule := policy.denied(project, version)) is not None:
        return FileVerdict(file.filename, version, Reason.DENY_LIST, f"denied by {rule!r}")
    if policy.not_allowed(project, version):
        return FileVerdict(file.filename, version, Reason.NOT_ALLOWED, "not on the allow-list")
    if file.upload_time is None:
        return FileVerdict(file.filename, version, Reason.UNTIMED, "upstream gives no upload time")
    if pin is not None and file.upload_time >= pin:
        detail = f"uploaded {format_time(file.upload_time)}, after the pin ({format_time(pin)})"
        return FileVerdict(file.filename, version, Reason.PINNED, detail)
    cooldown = policy.cooldown_for(project, now)
    until = file.upload_time + cooldown
    if now < until:
        detail = f"uploaded {format_time(file.upload_time)}; listed from {format_time(until)}"
        if (lapsed := policy.lapsed(project, now)) is not None:
            detail += f"; its exception expired {format_time(lapsed.expires)}: {lapsed.reason}"
        return FileVerdict(file.filename, version, Reason.COOLDOWN, detail, until)
    if file.yanked is not None:
        return FileVerdict(file.filename, version, Reason.YANKED, file.yanked or "yanked upstream")
    return FileVerdict(file.filename, version, Reason.LISTED, _excepted(policy, project, now))


def _advisory_verdict(
    policy: ViewPolicy, osv: OsvData, project: str, filename: str, version: str
) -> FileVerdict | None:
    """The verdict of the OSV records covering ``version``: a ``MAL-`` record first, then one
    the policy names, then one rated at or above ``block-severity`` (or, with
    ``block-unrated``, one with no usable rating); None when none of them blocks it."""
    found = osv.matching(project, version)
    for reason, blocks in (
        (Reason.MALWARE, lambda a: a.malicious),
        (Reason.ADVISORY, lambda a: a.id in policy.advisories),
        (Reason.SEVERITY, lambda a: severe(policy, a) is not None),
    ):
        advisory = next((a for a in found if blocks(a)), None)
        if advisory is not None:
            return FileVerdict(filename, version, reason, _advised(advisory, policy))
    return None


def severe(policy: ViewPolicy, advisory: Advisory) -> str | None:
    """Why ``policy`` blocks a (not malicious) advisory by its severity, or None.

    >>> from skypi.core.severity import Severity
    >>> from skypi.core.views import parse_policy
    >>> policy = parse_policy("safe", {"upstream": "https://up.example/", "block-severity": "high"})
    >>> severe(policy, Advisory("GHSA-1", "demo", severity=Severity("critical", "x", 9.8)))
    'rated critical, at or above high'
    >>> severe(policy, Advisory("PYSEC-1", "demo"))
    'no usable severity, and block-unrated is on'
    >>> severe(policy, Advisory("GHSA-2", "demo", severity=Severity("medium", "x", 5.0)))
    """
    if policy.block_severity is None:
        return None
    if advisory.severity is None:
        return "no usable severity, and block-unrated is on" if policy.block_unrated else None
    if at_least(advisory.severity.level, policy.block_severity):
        return f"rated {advisory.severity.level}, at or above {policy.block_severity}"
    return None


def _advised(advisory: Advisory, policy: ViewPolicy) -> str:
    """``MAL-2026-1: summary``; for a severity block, the rating and where it was read too."""
    text = advisory.id
    if not advisory.malicious and advisory.id not in policy.advisories:
        rating = advisory.severity.describe() if advisory.severity else "unrated"
        text += f" ({rating}; {severe(policy, advisory)})"
    return f"{text}: {advisory.summary}" if advisory.summary else text


def _excepted(policy: ViewPolicy, project: str, now: datetime) -> str:
    found = policy.exception(project, now)
    if found is None:
        return ""
    return f"cooldown exception until {format_time(found.expires)}: {found.reason}"


def _entry(policy: ViewPolicy, project: str, file: UpstreamFile, version: str) -> FileEntry:
    """The view page's entry of a listed file: a link to the view's cached copy (or, with
    ``files = "link"``, to upstream's URL), upstream's hashes, time and yank kept."""
    assert file.sha256 is not None
    assert file.upload_time is not None
    return FileEntry(
        filename=file.filename,
        key=f"{VIEW_FILES}/{project}/{file.filename}",  # relative to the view's root
        version=version,
        sha256=file.sha256,
        size=file.size or 0,
        upload_time=file.upload_time,
        requires_python=file.requires_python,
        metadata_sha256=file.metadata_sha256,
        yanked=file.yanked,
        url=file.url if policy.files == "link" else None,
    )


def evaluate(
    policy: ViewPolicy,
    project: str,
    upstream: UpstreamPage,
    now: datetime,
    osv: OsvData | None = None,
    *,
    serial: int = 0,
    pin: datetime | None = None,
) -> ViewOutcome:
    """The view's page of an upstream (not private, not reserved) ``project``; with ``pin``,
    its time-pinned form's (files uploaded before ``pin``, with today's yanks and status)."""
    project = canonicalize_name(project)
    osv = osv or OsvData()
    verdicts = tuple(_verdict(policy, project, upstream, f, now, osv, pin) for f in upstream.files)
    listed = tuple(
        _entry(policy, project, f, v.version)
        for f, v in zip(upstream.files, verdicts, strict=True)
        if v.listed
    )
    times = [v.until for v in verdicts if v.until is not None]
    found = policy.exception(project, now)
    if found is not None and any(v.reason in LISTING | {Reason.COOLDOWN} for v in verdicts):
        times.append(found.expires)
    whole = policy.denied(project, None) if policy.deny else None
    denied = any(r.whole_project and r.project == project for r in policy.deny)
    if denied or (policy.allow and not any(r.project == project for r in policy.allow)):
        note = f"denied by {whole!r}" if denied else "not on the allow-list"
        return ViewOutcome(None, verdicts, None, notes=(note,))
    page = ProjectPage(
        name=project,
        display_name=project,
        files=listed,
        serial=serial,
        status=ProjectStatus(upstream.status),
        status_reason=upstream.status_reason,
    )
    return ViewOutcome(page, verdicts, min(times) if times else None)


def decide(
    policy: ViewPolicy,
    project: str,
    *,
    private: bool,
    namespaces: Namespaces,
    upstream: UpstreamPage | None,
    now: datetime,
    osv: OsvData | None = None,
    serial: int = 0,
    pin: datetime | None = None,
) -> ViewOutcome:
    """The whole rule: a private or reserved name is this index's (its private page, if any,
    is what the view serves); otherwise the policy applied to upstream's page (None: upstream
    has no such project)."""
    name = canonicalize_name(project)
    mine = origin(name, private, namespaces)
    if mine is not None:
        files = upstream.files if upstream is not None else ()
        verdicts = tuple(FileVerdict(f.filename, "", mine[0], mine[1]) for f in files)
        return ViewOutcome(None, verdicts, None, origin=mine[0], notes=(mine[1],))
    if upstream is None:
        return ViewOutcome(None, (), None, notes=("upstream has no such project",))
    return evaluate(policy, name, upstream, now, osv, serial=serial, pin=pin)


def purged(outcome: ViewOutcome, cached: Iterable[str]) -> list[str]:
    """Which of the ``cached`` files (a view's copies of one project's upstream files, their
    ``.metadata`` beside them) go, given the view's current ``outcome`` for the project: each
    whose file's verdict is not in :data:`KEPT_CACHED`, and each whose file upstream's page no
    longer has (a pinned form cannot bring back what upstream deleted). A file listed again
    later is fetched again, and checked against upstream's SHA-256 again.

    >>> outcome = ViewOutcome(None, (FileVerdict("a-1.0.tar.gz", "1.0", Reason.MALWARE),
    ...     FileVerdict("a-2.0.tar.gz", "2.0", Reason.COOLDOWN)))
    >>> purged(outcome, ["a-1.0.tar.gz", "a-1.0.tar.gz.metadata", "a-2.0.tar.gz", "a-0.1.zip"])
    ['a-1.0.tar.gz', 'a-1.0.tar.gz.metadata', 'a-0.1.zip']
    """
    kept = {v.filename for v in outcome.verdicts if v.reason in KEPT_CACHED}
    return [name for name in cached if name.removesuffix(METADATA_SUFFIX) not in kept]


def pin_moment(pin: str) -> datetime:
    """The instant a time-pinned form's date stands for: the end of that day (UTC), so that
    ``@2026-11-01`` lists what was uploaded up to and including that day.

    >>> pin_moment("2026-11-01")
    datetime.datetime(2026, 11, 2, 0, 0, tzinfo=datetime.timezone.utc)
    """
    day = date.fromisoformat(pin)
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
