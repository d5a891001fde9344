"""What the indexer is told: a key landed or went. Kept apart from the indexer itself so the
Lambda handler can read its events without loading the metadata readers first."""

from __future__ import annotations

import functools
import posixpath
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from skypi.core.edge import serves_key
from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import DistFilename, parse_filename
from skypi.core.keys import PACKAGES_PREFIX

if TYPE_CHECKING:
    from skypi.core.metadata import CoreMetadata
    from skypi.core.pages import FileEntry
    from skypi.indexer.writer import Stored


@dataclass(frozen=True)
class Facts:
    """A stored file, inspected: its name, its core metadata and the entry it deserves."""

    dist: DistFilename
    meta: CoreMetadata
    entry: FileEntry

    def with_provenance(self, href: str) -> Facts:
        """The same file, its entry linking to its PEP 740 provenance."""
        return replace(self, entry=replace(self.entry, provenance=href))


@dataclass(frozen=True)
class Landed:
    """An object appeared (or changed) under ``key``.

    What the caller already knows comes along, so nothing is read twice: ``sha256`` (it hashed
    the bytes), ``facts`` (it stored these very bytes and read their metadata: storage is not
    asked again), ``page`` (the project page as it read it: the first swap is tried against
    it). An event from storage carries none of them and is confirmed against storage.
    ``upload``: the file was uploaded, so PyPI's upload rules apply at the final check too."""

    key: str
    sha256: str | None = None
    facts: Facts | None = None
    page: Stored | None = None
    upload: bool = False


@dataclass(frozen=True)
class Gone:
    """An object under ``key`` was removed."""

    key: str


Change = Landed | Gone


@functools.lru_cache(maxsize=1 << 16)
def project_of_key(key: str) -> DistFilename:
    """The distribution a ``packages/`` key holds, from its filename; raises if it is none,
    or if its page's link to it would not be read back as this key (the index never lists
    a file that its own read rules, :func:`skypi.core.edge.serves_key`, would not serve).

    Remembered per key (the answer is immutable, and a pass asks up to three times per file:
    a full reindex of 12,000 files spent about a tenth of its time here); a refusal is not."""
    if not key.startswith(PACKAGES_PREFIX):
        raise InvalidDistribution(f"{key!r} is outside {PACKAGES_PREFIX}")
    dist = parse_filename(posixpath.basename(key))
    if not serves_key(key):
        raise InvalidDistribution(
            f"{key!r} cannot be linked to: its path has a '.' or '..' segment, a segment "
            "starting with '.', or a literal '%' (which a link must encode, and the index "
            "refuses as a double encoding). Move the file to a plain path under packages/."
        )
    return dist
