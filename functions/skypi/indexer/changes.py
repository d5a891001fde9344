"""What the indexer is told: a key landed or went. Kept apart from the indexer itself so the
Lambda handler can read its events without loading the metadata readers first."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import DistFilename, parse_filename
from skypi.core.pages import PACKAGES_PREFIX


@dataclass(frozen=True)
class Landed:
    """An object appeared (or changed) under ``key``. ``sha256`` may be passed when known."""

    key: str
    sha256: str | None = None


@dataclass(frozen=True)
class Gone:
    """An object under ``key`` was removed."""

    key: str


Change = Landed | Gone


def project_of_key(key: str) -> DistFilename:
    """The distribution a ``packages/`` key holds, from its filename; raises if it is none."""
    if not key.startswith(PACKAGES_PREFIX):
        raise InvalidDistribution(f"{key!r} is outside {PACKAGES_PREFIX}")
    return parse_filename(posixpath.basename(key))
