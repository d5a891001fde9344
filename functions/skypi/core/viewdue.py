"""When each stored view page is due to be made again, for every view of an index, and when the
one timer that makes them is armed (``views/due.json``).

A view page changes by time alone (a cooldown ending, an exception expiring: its
``next-change``), and its upstream page is revalidated after the policy's ``refresh-minutes``;
a page is due at the earlier of the two. Where reads of stored pages run no code (CloudFront in
front of the bucket), this record is what a timer reads instead of every page.

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 12, 1, tzinfo=UTC)
>>> record = DueRecord().updated({("safe", "foo"): t, ("safe", "bar"): t.replace(day=3)})
>>> record.earliest() == t, record.due(t, 10)
(True, [('safe', 'foo')])
>>> DueRecord.from_json_bytes(record.to_json_bytes()) == record
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from skypi.core.errors import CorruptDocument
from skypi.core.pages import format_time, parse_time

Page = tuple[str, str]  # (view, project)


@dataclass(frozen=True)
class DueRecord:
    """Each stored view page's due time, and the moment the timer is armed for (if any)."""

    pages: Mapping[Page, datetime] = field(default_factory=dict)
    armed: datetime | None = None

    def updated(self, changes: Mapping[Page, datetime | None]) -> DueRecord:
        """Set (a time) or forget (None) each page's due time."""
        pages = dict(self.pages)
        for page, when in changes.items():
            if when is None:
                pages.pop(page, None)
            else:
                pages[page] = when
        return replace(self, pages=pages)

    def earliest(self) -> datetime | None:
        return min(self.pages.values(), default=None)

    def due(self, now: datetime, budget: int) -> list[Page]:
        """Up to ``budget`` pages due at ``now``, the longest overdue first."""
        ready = sorted((when, page) for page, when in self.pages.items() if when <= now)
        return [page for _, page in ready[:budget]]

    def to_json_bytes(self) -> bytes:
        views: dict[str, dict[str, str]] = {}
        for (view, project), when in sorted(self.pages.items()):
            views.setdefault(view, {})[project] = format_time(when)
        armed = format_time(self.armed) if self.armed is not None else None
        return json.dumps({"armed": armed, "views": views}, separators=(",", ":")).encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> DueRecord:
        try:
            doc = json.loads(raw)
            pages = {
                (str(view), str(project)): parse_time(when)
                for view, projects in doc["views"].items()
                for project, when in projects.items()
            }
            armed = parse_time(doc["armed"]) if doc["armed"] else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptDocument(f"the views' due record is unreadable: {exc}") from None
        return cls(pages, armed)
