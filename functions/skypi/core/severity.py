"""How severe an OSV record says a vulnerability is, read from the record's own fields, so that
a view can block vulnerabilities at or above a level (docs/views.md).

The OSV schema gives severity in two places (ossf/osv-schema, ``docs/schema.md``):

- ``severity``: a list of ``{"type", "score"}`` where ``type`` is ``CVSS_V2``, ``CVSS_V3`` or
  ``CVSS_V4`` and ``score`` a CVSS vector; an ``affected[]`` entry may carry its own list for
  its package, and then the record's top-level list is not set;
- ``database_specific``: free for the database; GitHub's advisories (GHSA) put their rating
  there as ``"severity": "LOW" | "MODERATE" | "HIGH" | "CRITICAL"``.

A vector's base score is computed by the ``cvss`` library (Red Hat's, pure Python, CVSS 2, 3
and 4) and rated on the CVSS qualitative scale (low 0.1-3.9, medium 4.0-6.9, high 7.0-8.9,
critical 9.0-10.0; a CVSS 2 score is rated on the same scale). A record rated in several
ways counts at its highest rating. A vector that does not parse, a type or a rating not
listed here, counts as no rating at all.

>>> rate([{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N"}], {})
Severity(level='critical', source='CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N', score=9.1)
>>> rate([], {"severity": "MODERATE"}).level
'medium'
>>> rate([{"type": "CVSS_V3", "score": "not a vector"}], {}) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

LEVELS: Final = ("low", "medium", "high", "critical")  # from the least to the most severe
# The spellings a policy (and GitHub's ``database_specific.severity``) may use for a level.
_NAMES: Final = {"low": "low", "medium": "medium", "moderate": "medium", "high": "high"} | {
    "critical": "critical"
}
_LOWEST_SCORE: Final = ((9.0, "critical"), (7.0, "high"), (4.0, "medium"), (0.1, "low"))
MAX_VECTOR: Final = 200  # a CVSS 4 vector with every metric is about 150 characters


@dataclass(frozen=True)
class Severity:
    """A record's rating: its level, where it was read, and the CVSS base score if any."""

    level: str
    source: str
    score: float | None = None

    def describe(self) -> str:
        """``high, CVSS:3.1/AV:N/... = 8.1`` or ``high, database_specific: HIGH``."""
        if self.score is None:
            return f"{self.level}, {self.source}"
        return f"{self.level}, {self.source} = {self.score:g}"

    def to_json(self) -> list[Any]:
        return [self.level, self.source, self.score]

    @classmethod
    def from_json(cls, data: Any) -> Severity | None:
        """A stored rating; None for anything else (an older document has none)."""
        if not isinstance(data, list) or len(data) != 3 or data[0] not in LEVELS:
            return None
        number = isinstance(data[2], int | float) and not isinstance(data[2], bool)
        score = float(data[2]) if number and 0 <= data[2] <= 10 else None
        return cls(data[0], str(data[1])[:MAX_VECTOR], score)


def level_name(text: str) -> str | None:
    """The level a name stands for (any case; ``moderate`` is GitHub's ``medium``)."""
    return _NAMES.get(text.strip().lower())


def at_least(level: str, threshold: str) -> bool:
    """Whether ``level`` is ``threshold`` or more severe.

    >>> at_least("critical", "high"), at_least("medium", "high")
    (True, False)
    """
    return LEVELS.index(level) >= LEVELS.index(threshold)


def level_of(score: float) -> str | None:
    """The qualitative rating of a CVSS score (None: 0.0, no severity)."""
    return next((level for low, level in _LOWEST_SCORE if score >= low), None)


def cvss_score(kind: Any, vector: Any) -> float | None:
    """The base score of a CVSS vector of an OSV ``severity`` entry; None when the type is not
    CVSS or the vector does not parse (hostile text included)."""
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    scorer = {"CVSS_V2": CVSS2, "CVSS_V3": CVSS3, "CVSS_V4": CVSS4}.get(kind)
    if scorer is None or not isinstance(vector, str) or len(vector) > MAX_VECTOR:
        return None
    try:
        score = scorer(vector).base_score
    except (CVSSError, ValueError, KeyError, IndexError, TypeError, ArithmeticError):
        return None
    return float(score)


def rate(entries: Any, database_specific: Any) -> Severity | None:
    """The highest rating among a record's ``severity`` entries and GitHub's
    ``database_specific.severity``; None when neither gives a usable one."""
    found: list[Severity] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        score = cvss_score(entry.get("type"), entry.get("score"))
        level = level_of(score) if score is not None else None
        if level is not None and score is not None:
            found.append(Severity(level, str(entry["score"]), score))
    named = database_specific.get("severity") if isinstance(database_specific, Mapping) else None
    if isinstance(named, str) and (level := level_name(named)) is not None:
        found.append(Severity(level, f"database_specific: {named[:20]}"))
    return max(found, key=lambda s: (LEVELS.index(s.level), s.score or 0), default=None)
