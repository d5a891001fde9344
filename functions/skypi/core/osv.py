"""OSV records (the schema of ossf/osv-schema) for PyPI: which versions of a project an
advisory covers, so that a view can block known-malicious files.

An index keeps one compact document of the advisories it blocks by (``skypi view osv``
imports an OSV export: ``PyPI/all.zip`` of osv.dev, a folder or a file of records), and a
view's policy decides which of them block: the ``MAL-`` ones (malicious packages) always,
others when the policy names their id or when their severity (:mod:`skypi.core.severity`,
rated once, on import) is at or above the policy's ``block-severity``.

Matching follows the schema: the ecosystem is exactly ``PyPI``, the package name is compared
normalized, an ECOSYSTEM range is compared as PEP 440 versions (``introduced: "0"`` is every
version, even unlisted ones), the ``versions`` list adds exact versions, and a withdrawn
record matches nothing.

>>> mal = Advisory.from_record({"id": "MAL-2026-1", "modified": "2026-11-02T09:30:00Z",
...     "affected": [{"package": {"ecosystem": "PyPI", "name": "acme-utils"},
...                   "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]})
>>> db = OsvData.from_advisories([mal])
>>> [a.id for a in db.matching("Acme_Utils", "9.9")]
['MAL-2026-1']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from skypi.core.severity import Severity, rate

ECOSYSTEM: Final = "PyPI"
MALICIOUS_PREFIX: Final = "MAL-"
MAX_SUMMARY: Final = 300


@dataclass(frozen=True)
class Span:
    """One ECOSYSTEM range's interval: from ``introduced`` (None: the first version) up to
    ``fixed`` (excluded) or ``last_affected`` (included); neither: no upper end."""

    introduced: str | None
    fixed: str | None = None
    last_affected: str | None = None

    def covers(self, version: Version) -> bool:
        if self.introduced is not None and version < Version(self.introduced):
            return False
        if self.fixed is not None and version >= Version(self.fixed):
            return False
        return self.last_affected is None or version <= Version(self.last_affected)


@dataclass(frozen=True)
class Advisory:
    """What of one OSV record a view needs for one package: its id, summary, exact versions
    and ranges, and its severity (None: the record gives no usable one)."""

    id: str
    project: str
    summary: str = ""
    versions: frozenset[str] = frozenset()
    spans: tuple[Span, ...] = ()
    severity: Severity | None = None

    @property
    def malicious(self) -> bool:
        return self.id.startswith(MALICIOUS_PREFIX)

    def covers(self, version: str) -> bool:
        """Whether the advisory covers ``version`` (a version that is not PEP 440 is covered
        only when listed exactly)."""
        if version in self.versions:
            return True
        try:
            parsed = Version(version)
        except InvalidVersion:
            return False
        if any(_same(parsed, v) for v in self.versions):
            return True
        return any(span.covers(parsed) for span in self.spans)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Advisory | None:
        """The advisory for the first PyPI package of an OSV record; None when the record is
        withdrawn or names no PyPI package. ValueError when the record is malformed."""
        found = cls.all_from_record(record)
        return found[0] if found else None

    @classmethod
    def all_from_record(cls, record: Mapping[str, Any]) -> list[Advisory]:
        """One advisory per PyPI package a record affects (none when withdrawn)."""
        if not isinstance(record, Mapping) or not isinstance(record.get("id"), str):
            raise ValueError("an OSV record needs an 'id'")
        if record.get("withdrawn"):
            return []
        summary = str(record.get("summary") or "")[:MAX_SUMMARY]
        found = []
        for affected in _list(record.get("affected")):
            package = affected.get("package") if isinstance(affected, Mapping) else None
            if not isinstance(package, Mapping) or package.get("ecosystem") != ECOSYSTEM:
                continue
            name = canonicalize_name(str(package.get("name", "")))
            versions = frozenset(str(v) for v in _list(affected.get("versions")))
            spans = tuple(s for r in _list(affected.get("ranges")) for s in _spans(r))
            severity = _severity(record, affected)
            found.append(cls(record["id"], name, summary, versions, spans, severity))
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "summary": self.summary,
            "versions": sorted(self.versions),
            "spans": [[s.introduced, s.fixed, s.last_affected] for s in self.spans],
            "severity": self.severity.to_json() if self.severity else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Advisory:
        spans = tuple(Span(*span) for span in data["spans"])
        severity = Severity.from_json(data.get("severity"))
        versions = frozenset(data["versions"])
        return cls(data["id"], data["project"], data["summary"], versions, spans, severity)


def _severity(record: Mapping[str, Any], affected: Mapping[str, Any]) -> Severity | None:
    """A package's rating: its ``affected[]`` entry's own ``severity`` list when it has one
    (the schema then leaves the record's unset), else the record's; GitHub's
    ``database_specific.severity`` of the entry, else of the record."""
    entries = affected.get("severity") or record.get("severity")
    own = affected.get("database_specific")
    named = own if isinstance(own, Mapping) and "severity" in own else None
    return rate(entries, named or record.get("database_specific"))


def _same(version: Version, text: str) -> bool:
    try:
        return version == Version(text)
    except InvalidVersion:
        return False


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _spans(found: Any) -> list[Span]:
    """The intervals of one ECOSYSTEM range (other types say nothing of PEP 440 versions).
    Events are read in order: each ``introduced`` opens an interval, ``fixed`` or
    ``last_affected`` closes it. An event version that is no PEP 440 version is skipped."""
    if not isinstance(found, Mapping) or found.get("type") != "ECOSYSTEM":
        return []
    spans: list[Span] = []
    start: str | None = None
    opened = False
    for event in _list(found.get("events")):
        if not isinstance(event, Mapping):
            continue
        if "introduced" in event:
            start = None if str(event["introduced"]) == "0" else _valid(event["introduced"])
            opened = start is not None or str(event["introduced"]) == "0"
        elif opened and "fixed" in event and _valid(event["fixed"]):
            spans.append(Span(start, fixed=str(event["fixed"])))
            opened = False
        elif opened and "last_affected" in event and _valid(event["last_affected"]):
            spans.append(Span(start, last_affected=str(event["last_affected"])))
            opened = False
    if opened:
        spans.append(Span(start))
    return spans


def _valid(text: Any) -> str | None:
    try:
        Version(str(text))
    except InvalidVersion:
        return None
    return str(text)


@dataclass(frozen=True)
class OsvData:
    """The advisories an index blocks by, by project."""

    by_project: Mapping[str, tuple[Advisory, ...]] = field(default_factory=dict)

    @classmethod
    def from_advisories(cls, advisories: Iterable[Advisory]) -> OsvData:
        by: dict[str, list[Advisory]] = {}
        for advisory in advisories:
            by.setdefault(advisory.project, []).append(advisory)
        return cls({p: tuple(sorted(a, key=lambda x: x.id)) for p, a in sorted(by.items())})

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> OsvData:
        return cls.from_advisories(a for r in records for a in Advisory.all_from_record(r))

    def matching(self, project: str, version: str) -> list[Advisory]:
        """The advisories that cover ``version`` of ``project`` (any spelling of its name)."""
        found = self.by_project.get(canonicalize_name(project), ())
        return [a for a in found if a.covers(version)]

    def __len__(self) -> int:
        return sum(len(a) for a in self.by_project.values())

    def to_json_bytes(self) -> bytes:
        every = [a.to_json() for found in self.by_project.values() for a in found]
        return json.dumps({"advisories": every}, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> OsvData:
        """The stored document; ValueError when ``raw`` is not one."""
        try:
            return cls.from_advisories(Advisory.from_json(a) for a in json.loads(raw)["advisories"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not OSV data: {type(exc).__name__}: {exc}") from exc
