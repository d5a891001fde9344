"""The landing page's manifest: the project count and the last uploads. The page carries it in
a data block (:meth:`SiteSummary.to_data_block`), so one compare-and-swap of one object updates
both; older versions kept it in a file beside the page
(:data:`skypi.core.keys.LEGACY_SITE_JSON_KEY`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from packaging.utils import NormalizedName

from skypi.core.errors import CorruptDocument, reading
from skypi.core.pages import format_time, parse_time

_MANIFEST_OPEN: Final = '<script type="application/json" id="skypi-site">'
_MANIFEST: Final = re.compile(re.escape(_MANIFEST_OPEN).encode() + rb"(.*?)</script>", re.DOTALL)
RECENT: Final = 20  # uploads shown on the landing page


@dataclass(frozen=True)
class Upload:
    name: NormalizedName
    display_name: str
    version: str
    filename: str
    upload_time: datetime


@dataclass(frozen=True)
class SiteSummary:
    """What the landing page shows: the project count and the last uploads."""

    projects: int = 0
    recent: tuple[Upload, ...] = ()
    serial: int = 0
    root_serial: int = 0  # of the root listing the count was taken from

    def with_uploads(self, uploads: list[Upload]) -> SiteSummary:
        if not uploads:
            return self
        seen = {u.filename for u in uploads}
        merged = sorted(
            [*uploads, *(u for u in self.recent if u.filename not in seen)],
            key=lambda u: u.upload_time,
            reverse=True,
        )
        return replace(self, recent=tuple(merged[:RECENT]), serial=self.serial + 1)

    def without(self, gone: Iterable[tuple[str, str]]) -> SiteSummary:
        """The summary without the uploads of files that left the index (deleted, removed
        from the folder): the landing page lists only what can be installed.

        >>> from datetime import UTC, datetime
        >>> u = Upload(NormalizedName("a"), "a", "1.0", "a-1.0.tar.gz", datetime.now(UTC))
        >>> s = SiteSummary(recent=(u,))
        >>> s.without([("a", "a-1.0.tar.gz")]).recent, s.without([("b", "a-1.0.tar.gz")]) is s
        ((), True)
        """
        drop = set(gone)
        if not drop:
            return self
        kept = tuple(u for u in self.recent if (u.name, u.filename) not in drop)
        if len(kept) == len(self.recent):
            return self
        return replace(self, recent=kept, serial=self.serial + 1)

    def with_listing(self, count: int, root_serial: int) -> SiteSummary:
        """The project count of the root listing at ``root_serial``; an older listing's count
        (a slower writer's) changes nothing."""
        if root_serial < self.root_serial or (count, root_serial) == (
            self.projects,
            self.root_serial,
        ):
            return self
        return replace(self, projects=count, root_serial=root_serial, serial=self.serial + 1)

    def to_json_bytes(self) -> bytes:
        doc = {
            "serial": self.serial,
            "projects": self.projects,
            "root_serial": self.root_serial,
            "recent": [
                {
                    "name": u.name,
                    "display": u.display_name,
                    "version": u.version,
                    "filename": u.filename,
                    "time": format_time(u.upload_time),
                }
                for u in self.recent
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> SiteSummary:
        with reading("the landing page's manifest"):
            return cls._from_doc(json.loads(raw))

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> SiteSummary:
        recent = tuple(
            Upload(
                NormalizedName(u["name"]),
                u["display"],
                u["version"],
                u["filename"],
                parse_time(u["time"]),
            )
            for u in doc["recent"]
        )
        return cls(int(doc["projects"]), recent, int(doc["serial"]), int(doc.get("root_serial", 0)))

    def to_data_block(self) -> str:
        """The manifest as a data block in the landing page: JSON with ``<``, ``>`` and ``&``
        escaped, so no text in it can close the element (a data block is never executed)."""
        text = self.to_json_bytes().decode().strip()
        for char in "<>&":
            text = text.replace(char, f"\\u{ord(char):04x}")
        return f"{_MANIFEST_OPEN}{text}</script>"

    @classmethod
    def from_landing(cls, html: bytes) -> SiteSummary | None:
        """The manifest a rendered landing page carries (None: a page without one).

        >>> from skypi.core.site import render_landing
        >>> s = SiteSummary(projects=3, serial=9)
        >>> SiteSummary.from_landing(render_landing(s)) == s
        True
        """
        found = _MANIFEST.search(html)
        if found is None:
            return None
        try:
            return cls.from_json_bytes(found.group(1))
        except CorruptDocument:
            return None


__all__ = ["RECENT", "SiteSummary", "Upload"]
