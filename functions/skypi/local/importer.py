"""``skypi import SOURCE``: move a pypiserver folder or a devpi export into an index.

Every distribution under SOURCE (flat or nested, any depth; dot-directories skipped) is copied
byte for byte to ``packages/<project>/<filename>`` with a create-only write that carries its
SHA-256 (S3 checks it). A file already there with the same bytes is left alone, so an
interrupted import can simply be run again; one with other bytes is reported, never replaced.
Then the copied projects are indexed. Files are streamed, never held in memory: what grows
with SOURCE is the list of paths.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from skypi.core.digests import hash_stream
from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import DISTRIBUTION_SUFFIXES, DistFilename, parse_filename
from skypi.core.keys import file_key
from skypi.indexer.service import Indexer, Landed, Outcome
from skypi.store.base import PreconditionFailed, Store

log = logging.getLogger("skypi.import")
CHUNK = 1024 * 1024
INDEX_BATCH = 2000


@dataclass
class ImportReport:
    copied: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    indexed: Outcome = field(default_factory=Outcome)


def find_distributions(source: Path) -> Iterator[Path]:
    """Distribution files under ``source``, in a stable order, by their extension."""
    for directory, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(directory, name)
            if name.startswith(".") or not name.endswith(DISTRIBUTION_SUFFIXES):
                continue  # devpi's JSON, READMEs, .metadata files: not distributions
            yield path


class Importer:
    def __init__(self, store: Store, *, workers: int = 8) -> None:
        self.store = store
        self.indexer = Indexer(store)
        self.workers = workers

    def _copy(self, path: Path, dist: DistFilename) -> tuple[str, str, str]:
        """(outcome, key, sha256) for one file: ``copied``, ``identical`` or ``conflict``."""
        key = file_key(dist.project, dist.filename)
        with path.open("rb") as fh:
            sha256 = hash_stream(fh)[1]["sha256"]
        try:
            with path.open("rb") as fh:
                self.store.put(key, fh, if_none_match=True, sha256=sha256)
        except PreconditionFailed:
            there = self.store.head(key)
            stored = there.sha256 if there and there.sha256 else self.indexer.sha256_of(key)
            return ("identical" if stored == sha256 else "conflict"), key, sha256
        return "copied", key, sha256

    def run(
        self,
        source: Path,
        *,
        index: bool = True,
        progress: Callable[[int], object] | None = None,
        total: Callable[[int], object] | None = None,
    ) -> ImportReport:
        report = ImportReport()
        work: list[tuple[Path, DistFilename]] = []
        for path in find_distributions(source):
            try:
                work.append((path, parse_filename(path.name)))
            except InvalidDistribution as exc:
                report.skipped.append((str(path), str(exc)))
        if total:
            total(len(work))

        def one(item: tuple[Path, DistFilename]) -> tuple[str, str, str]:
            result = self._copy(*item)
            if progress:
                progress(1)
            return result

        landed: list[Landed] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for (path, _), (outcome, key, sha256) in zip(work, pool.map(one, work), strict=True):
                if outcome == "conflict":
                    report.conflicts.append(
                        (str(path), f"{key} already holds other bytes; left as it is")
                    )
                    continue
                (report.copied if outcome == "copied" else report.identical).append(key)
                landed.append(Landed(key, sha256))
        if index:  # in batches: each page written once a batch, the root listing once
            for start in range(0, len(landed), INDEX_BATCH):
                report.indexed.merge(self.indexer.apply(landed[start : start + INDEX_BATCH]))
        for path_text, reason in report.skipped:
            log.info("skipped %s: %s", path_text, reason)
        return report
