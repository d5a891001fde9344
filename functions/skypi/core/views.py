"""A view's policy: which upstream index it shows, and under which rules (docs/views.md).

A view is a second index URL (``/view/<name>/simple/``) over the private index and one
upstream index. Its policy is one document (TOML as the operator writes it, stored as JSON):

.. code-block:: toml

    upstream = "https://pypi.org/simple/"
    cooldown-days = 7                 # upstream files younger than this are not listed
    files = "cache"                   # or "link": straight to upstream's file URLs
    deny = ["evil-pkg", "requests<2.20"]
    allow = []                        # when given, only these projects (and versions)
    block-advisories = ["GHSA-..."]   # besides every MAL- record of the index's OSV data
    block-severity = "high"           # and every advisory rated high or critical
    block-unrated = true              # with block-severity: an advisory with no rating blocks
    refresh-minutes = 10              # how long an upstream page is trusted unrevalidated

    [[exception]]
    project = "urllib3"
    reason = "the fix for CVE-2026-1 is needed before the cooldown ends"
    expires = 2026-12-31T00:00:00Z
    cooldown-days = 0

:func:`parse_policy` checks every field and says what is wrong with it.

>>> policy = parse_policy("safe", {"upstream": "http://127.0.0.1:8000/simple/",
...                                "cooldown-days": 7, "deny": ["evil"]})
>>> policy.cooldown.days, policy.denied("Evil", "1.0")
(7, 'evil')
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from skypi.core.errors import InvalidRequest
from skypi.core.severity import LEVELS, level_name

FileMode = Literal["cache", "link"]
FILE_MODES: Final = ("cache", "link")
MAX_COOLDOWN_DAYS: Final = 3650
MAX_LIST: Final = 10_000
MAX_REASON: Final = 500
MAX_URL: Final = 2000
DEFAULT_REFRESH_MINUTES: Final = 10
_FILE_HOST: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,252}[a-z0-9])?(?::[0-9]{1,5})?")
_VIEW_NAME: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_KNOWN: Final = frozenset(
    {
        "upstream",
        "cooldown-days",
        "files",
        "deny",
        "allow",
        "block-advisories",
        "block-severity",
        "block-unrated",
        "refresh-minutes",
        "exception",
        "file-hosts",
    }
)
# Where an index's files live when that is not the index's own host (PyPI's pages link to
# files.pythonhosted.org): the hosts a view fetches files from unless ``file-hosts`` is given.
KNOWN_FILE_HOSTS: Final = {"pypi.org": ("files.pythonhosted.org",)}


def view_name(text: str) -> str:
    """A view's name: lowercase letters and digits in runs joined by single dashes (it is a
    URL segment and a storage key segment).

    >>> view_name("safe-pypi")
    'safe-pypi'
    >>> view_name("Safe")
    Traceback (most recent call last):
    skypi.core.errors.InvalidRequest: 'Safe' is not a view name: use lowercase letters and \
digits, in words joined by single dashes (safe, pypi-7d), at most 64 characters.
    """
    if len(text) > 64 or not _VIEW_NAME.fullmatch(text):
        raise InvalidRequest(
            f"{text[:64]!r} is not a view name: use lowercase letters and digits, in words joined "
            "by single dashes (safe, pypi-7d), at most 64 characters."
        )
    return text


@dataclass(frozen=True)
class Rule:
    """One entry of an allow- or deny-list: a project and, optionally, which versions."""

    text: str
    requirement: Requirement

    @property
    def project(self) -> NormalizedName:
        return canonicalize_name(self.requirement.name)

    def covers(self, project: str, version: str | None) -> bool:
        """Whether the rule names ``project`` and (if it has a specifier) ``version``; a
        version that is not PEP 440 is never inside a specifier."""
        if canonicalize_name(project) != self.project:
            return False
        spec = self.requirement.specifier
        if not str(spec) or version is None:
            return True
        try:
            return spec.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return False

    @property
    def whole_project(self) -> bool:
        return not str(self.requirement.specifier)


@dataclass(frozen=True)
class Exception_:
    """A project's own cooldown, with the reason and until when (then the view's applies)."""

    project: NormalizedName
    reason: str
    expires: datetime
    cooldown: timedelta = timedelta(0)

    def active(self, now: datetime) -> bool:
        return now < self.expires


@dataclass(frozen=True)
class ViewPolicy:
    """A view's policy, checked (see the module's documentation for the format)."""

    name: str
    upstream: str
    cooldown: timedelta = timedelta(0)
    files: FileMode = "cache"
    deny: tuple[Rule, ...] = ()
    allow: tuple[Rule, ...] = ()
    advisories: frozenset[str] = frozenset()
    refresh: timedelta = timedelta(minutes=DEFAULT_REFRESH_MINUTES)
    exceptions: tuple[Exception_, ...] = ()
    extra_file_hosts: tuple[str, ...] = ()
    block_severity: str | None = None  # a level of skypi.core.severity.LEVELS
    block_unrated: bool = True  # with block_severity: an advisory with no rating blocks

    @property
    def file_hosts(self) -> frozenset[str]:
        """The hosts (``host`` or ``host:port``, lower case) whose file URLs this view lists
        and fetches: upstream's own, the known file host of a known index, and those the
        policy names. A hostile upstream page cannot send the server to any other address."""
        own = urlsplit(self.upstream).netloc.lower()
        known = KNOWN_FILE_HOSTS.get(urlsplit(self.upstream).hostname or "", ())
        return frozenset((own, *known, *self.extra_file_hosts))

    def denied(self, project: str, version: str | None) -> str | None:
        """The deny-list entry that covers ``version`` of ``project`` (None: not denied)."""
        return next((r.text for r in self.deny if r.covers(project, version)), None)

    def not_allowed(self, project: str, version: str | None) -> bool:
        """Whether an allow-list is given and does not cover ``version`` of ``project``."""
        return bool(self.allow) and not any(r.covers(project, version) for r in self.allow)

    def exception(self, project: str, now: datetime) -> Exception_ | None:
        name = canonicalize_name(project)
        return next((e for e in self.exceptions if e.project == name and e.active(now)), None)

    def lapsed(self, project: str, now: datetime) -> Exception_ | None:
        """The exception of ``project`` that expired last, when none is active (what
        ``skypi view explain`` names beside a cooldown that applies again)."""
        if self.exception(project, now) is not None:
            return None
        name = canonicalize_name(project)
        expired = [e for e in self.exceptions if e.project == name]
        return max(expired, key=lambda e: e.expires, default=None)

    def cooldown_for(self, project: str, now: datetime) -> timedelta:
        found = self.exception(project, now)
        return self.cooldown if found is None else found.cooldown

    def to_json(self) -> dict[str, Any]:
        severity = (
            {"block-severity": self.block_severity, "block-unrated": self.block_unrated}
            if self.block_severity
            else {}
        )
        return {
            "upstream": self.upstream,
            "cooldown-days": _days(self.cooldown),
            "files": self.files,
            "deny": [r.text for r in self.deny],
            "allow": [r.text for r in self.allow],
            "block-advisories": sorted(self.advisories),
            "refresh-minutes": int(self.refresh.total_seconds() // 60),
            "file-hosts": list(self.extra_file_hosts),
            "exception": [
                {
                    "project": e.project,
                    "reason": e.reason,
                    "expires": e.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "cooldown-days": _days(e.cooldown),
                }
                for e in self.exceptions
            ],
        } | severity

    def to_json_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=1).encode() + b"\n"


def _days(delta: timedelta) -> int | float:
    days = delta.total_seconds() / 86400
    return int(days) if days == int(days) else days


def parse_policy(name: str, doc: Mapping[str, Any]) -> ViewPolicy:
    """The policy ``doc`` describes (a TOML or JSON document, already parsed), or
    :class:`InvalidRequest` naming the field that is wrong and what it should be."""
    if not isinstance(doc, Mapping):
        raise InvalidRequest("A view's policy is a table of settings (TOML or JSON object).")
    unknown = sorted(set(doc) - _KNOWN)
    if unknown:
        raise InvalidRequest(
            f"Unknown setting {unknown[0]!r} in the policy of view {name!r}: the settings are "
            f"{', '.join(sorted(_KNOWN))}."
        )
    files = doc.get("files", "cache")
    if files not in FILE_MODES:
        raise InvalidRequest(f"files must be 'cache' or 'link', not {files!r}.")
    return ViewPolicy(
        name=view_name(name),
        upstream=upstream_url(doc.get("upstream")),
        cooldown=_cooldown(doc.get("cooldown-days", 0), "cooldown-days"),
        files=files,
        deny=_rules(doc.get("deny", []), "deny"),
        allow=_rules(doc.get("allow", []), "allow"),
        advisories=_advisories(doc.get("block-advisories", [])),
        **_severity(doc),
        refresh=timedelta(minutes=_number(doc.get("refresh-minutes", 10), "refresh-minutes", 1)),
        exceptions=tuple(_exception(e, i) for i, e in enumerate(_table_list(doc))),
        extra_file_hosts=tuple(
            _file_host(h) for h in _strings(doc.get("file-hosts", []), "file-hosts")
        ),
    )


def _severity(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``block-severity`` (a level) and ``block-unrated`` (true or false, only with it)."""
    value, unrated = doc.get("block-severity"), doc.get("block-unrated", True)
    if value is None:
        if "block-unrated" in doc:
            raise InvalidRequest(
                "block-unrated applies only with block-severity (the level from which "
                "vulnerability advisories block: low, medium, high or critical)."
            )
        return {}
    level = level_name(value) if isinstance(value, str) else None
    if level is None:
        raise InvalidRequest(
            f"block-severity must be one of {', '.join(LEVELS)} (or moderate, GitHub's "
            f"word for medium), not {value!r}."
        )
    if not isinstance(unrated, bool):
        raise InvalidRequest(
            f"block-unrated must be true (an advisory with no usable severity blocks) or "
            f"false (it does not), not {unrated!r}."
        )
    return {"block_severity": level, "block_unrated": unrated}


def _file_host(value: str) -> str:
    """A host (``files.example.com`` or ``files.example.com:8443``) a view may fetch files from."""
    host = value.strip().lower()
    if not _FILE_HOST.fullmatch(host):
        raise InvalidRequest(
            f"file-hosts takes host names (such as files.example.com or files.example.com:8443), "
            f"not {value!r}."
        )
    return host


def upstream_url(value: Any) -> str:
    """An upstream index's base URL (``https://pypi.org/simple/``): http or https, a host, no
    credentials, query or fragment, ending in ``/``.

    >>> upstream_url("https://pypi.org/simple")
    'https://pypi.org/simple/'
    """
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        raise InvalidRequest(
            "upstream must be the URL of a PEP 691 index, such as https://pypi.org/simple/."
        )
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidRequest(f"upstream must be an http:// or https:// URL, not {value!r}.")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidRequest(
            "upstream takes no credentials, query or fragment: give the index's plain URL."
        )
    if not value.isascii() or any(c.isspace() for c in value):
        raise InvalidRequest(f"upstream must be a plain ASCII URL, not {value!r}.")
    return value if value.endswith("/") else value + "/"


def _number(value: Any, what: str, low: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise InvalidRequest(f"{what} must be a number, not {value!r}.")
    high = MAX_COOLDOWN_DAYS * 1440
    if not low <= value <= high:
        raise InvalidRequest(f"{what} must be between {low:g} and {high}, not {value!r}.")
    return float(value)


def _cooldown(value: Any, what: str) -> timedelta:
    days = _number(value, what)
    if days > MAX_COOLDOWN_DAYS:
        raise InvalidRequest(f"{what} must be at most {MAX_COOLDOWN_DAYS}, not {value!r}.")
    return timedelta(days=days)


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{what} must be a list of strings.")
    if len(value) > MAX_LIST:
        raise InvalidRequest(f"{what} may hold at most {MAX_LIST} entries.")
    return value


def _rules(value: Any, what: str) -> tuple[Rule, ...]:
    rules = []
    for text in _strings(value, what):
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise InvalidRequest(
                f"{what}: {text!r} is not a project with optional versions (evil-pkg, "
                f"requests<2.20): {exc}"
            ) from None
        if requirement.url or requirement.marker or requirement.extras:
            raise InvalidRequest(
                f"{what}: {text!r} may name versions only (no URL, marker, extra)."
            )
        rules.append(Rule(text, requirement))
    return tuple(rules)


def _advisories(value: Any) -> frozenset[str]:
    ids = _strings(value, "block-advisories")
    bad = [i for i in ids if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}", i)]
    if bad:
        raise InvalidRequest(
            f"block-advisories: {bad[0]!r} is not an OSV id (GHSA-..., PYSEC-...)."
        )
    return frozenset(ids)


def _table_list(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found = doc.get("exception", [])
    if not isinstance(found, list) or not all(isinstance(e, Mapping) for e in found):
        raise InvalidRequest("exception must be a list of tables ([[exception]] in TOML).")
    return found


def _exception(entry: Mapping[str, Any], index: int) -> Exception_:
    where = f"exception {index + 1}"
    unknown = sorted(set(entry) - {"project", "reason", "expires", "cooldown-days"})
    if unknown:
        raise InvalidRequest(f"{where}: unknown setting {unknown[0]!r}.")
    project = entry.get("project")
    if not isinstance(project, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", project):
        raise InvalidRequest(f"{where}: project must be a project name.")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidRequest(
            f"{where} ({project}): give a reason (why the project skips the cooldown), "
            f"at most {MAX_REASON} characters."
        )
    return Exception_(
        canonicalize_name(project),
        reason.strip(),
        _moment(entry.get("expires"), f"{where} ({project}): expires"),
        _cooldown(entry.get("cooldown-days", 0), f"{where} ({project}): cooldown-days"),
    )


def _moment(value: Any, what: str) -> datetime:
    """A date (midnight UTC) or a date and time (naive is UTC), as TOML or text gives it."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequest(
                f"{what} must be a date (2026-12-31) or a time, not {value!r}."
            ) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise InvalidRequest(f"{what} is required: the date the exception ends (2026-12-31).")


def policy_from_json_bytes(name: str, raw: bytes) -> ViewPolicy:
    """A stored policy; :class:`InvalidRequest` when it is not one (edited by hand)."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"The policy of view {name!r} is not JSON: {exc}") from None
    return parse_policy(name, doc)
