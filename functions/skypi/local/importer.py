"""``skypi import SOURCE``: move a pypiserver folder or a devpi export into an index.

Every distribution under SOURCE (flat or nested, any depth; dot-directories skipped) is copied
byte for byte to ``packages/<project>/<filename>`` with a create-only write that carries its
SHA-256 (S3 checks it). Each file is read first as the index would read it: a corrupt or
mislabelled file is reported by its path and never copied, so it cannot take the name from a
valid copy elsewhere in SOURCE; of several files with one name, the first valid one is
imported. A file already there with the same bytes is left alone, so an interrupted import can
simply be run again; one with other bytes is reported, never replaced.
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
from skypi.core.metadata import read_file_metadata
from skypi.indexer.service import Indexer, Landed, Outcome
from skypi.store.base import PreconditionFailed, Store

log = logging.getLogger("skypi.import")
CHUNK = 1024 * 1024
INDEX_BATCH = 2000


@dataclass
class ImportReport:
    """What an import did, by the real paths of SOURCE (never storage keys)."""

    copied: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not distributions, invalid
    copies: list[tuple[str, str]] = field(default_factory=list)  # the same bytes twice in SOURCE
    indexed: Outcome = field(default_factory=Outcome)
    refused: list[tuple[str, str]] = field(default_factory=list)  # by the indexer, by path


@dataclass(frozen=True)
class _Candidate:
    path: Path
    dist: DistFilename
    key: str
    sha256: str = ""
    problem: str = ""  # why the file cannot be imported; empty when it can


def find_distributions(source: Path) -> Iterator[Path]:
    """Distribution files under ``source``, in a stable order, by their extension."""
    for directory, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(directory, name)
            if name.startswith(".") or not name.endswith(DISTRIBUTION_SUFFIXES):
                continue  # devpi's JSON, READMEs, .metadata files: not distributions
            yield path


def _examine(path: Path, dist: DistFilename) -> _Candidate:
    """Hash the file and read its metadata as the index would: a file the index would refuse
    (corrupt, or a filename that disagrees with its metadata) is known before anything is
    copied, so it can never take the name from a valid copy elsewhere in SOURCE."""
    key = file_key(dist.project, dist.filename)
    try:
        with path.open("rb") as fh:
            size, digests = hash_stream(fh)
            read_file_metadata(dist, fh, size)
    except InvalidDistribution as exc:
        return _Candidate(path, dist, key, problem=str(exc))
    except OSError as exc:
        return _Candidate(path, dist, key, problem=f"cannot be read: {exc.strerror or exc}")
    return _Candidate(path, dist, key, digests["sha256"])


def choose(candidates: list[_Candidate], report: ImportReport) -> list[_Candidate]:
    """One file per name: the first valid one in SOURCE's order; a byte-identical copy is
    noted, a different one reported with the path that was chosen instead."""
    chosen: dict[str, _Candidate] = {}
    for candidate in candidates:
        if candidate.problem:
            report.skipped.append((str(candidate.path), candidate.problem))
            continue
        first = chosen.setdefault(candidate.key, candidate)
        if first is candidate:
            continue
        if first.sha256 == candidate.sha256:
            report.copies.append((str(candidate.path), f"the same bytes as {first.path}"))
        else:
            report.conflicts.append(
                (str(candidate.path), f"other bytes than {first.path}, which is imported")
            )
    return list(chosen.values())


class Importer:
    def __init__(self, store: Store, *, workers: int = 8) -> None:
        self.store = store
        self.indexer = Indexer(store)
        self.workers = workers

    def _copy(self, candidate: _Candidate) -> str:
        """``copied``, ``identical`` or ``conflict`` (the index holds other bytes there)."""
        try:
            with candidate.path.open("rb") as fh:
                self.store.put(candidate.key, fh, if_none_match=True, sha256=candidate.sha256)
        except PreconditionFailed:
            there = self.store.head(candidate.key)
            stored = (
                there.sha256 if there and there.sha256 else self.indexer.sha256_of(candidate.key)
            )
            return "identical" if stored == candidate.sha256 else "conflict"
        return "copied"

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
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            examined = list(pool.map(lambda item: _examine(*item), work))
            chosen = choose(examined, report)
            skipped = len(examined) - len(chosen)
            if progress and skipped:
                progress(skipped)

            def one(candidate: _Candidate) -> str:
                outcome = self._copy(candidate)
                if progress:
                    progress(1)
                return outcome

            landed = self._landed(chosen, list(pool.map(one, chosen)), report)
        if index:  # in batches: each page written once a batch, the root listing once
            for start in range(0, len(landed), INDEX_BATCH):
                # isolated: a project whose indexing raises is reported, the others indexed
                # (a bad archive does not raise: it is set aside, its reason in ``refused``)
                batch = landed[start : start + INDEX_BATCH]
                report.indexed.merge(self.indexer.apply(batch, isolate=True))
            where = {c.key: str(c.path) for c in chosen}
            report.refused = [(where.get(k, k), why) for k, why in report.indexed.refused]
            report.refused += [(where.get(k, k), why) for k, why in report.indexed.conflicts]
        for path_text, reason in report.skipped:
            log.info("skipped %s: %s", path_text, reason)
        return report

    @staticmethod
    def _landed(
        chosen: list[_Candidate], outcomes: list[str], report: ImportReport
    ) -> list[Landed]:
        landed: list[Landed] = []
        for candidate, outcome in zip(chosen, outcomes, strict=True):
            if outcome == "conflict":
                report.conflicts.append(
                    (
                        str(candidate.path),
                        "the index already holds other bytes under this name (from an "
                        "earlier import or upload); left as it is",
                    )
                )
                continue
            (report.copied if outcome == "copied" else report.identical).append(str(candidate.path))
            landed.append(Landed(candidate.key, candidate.sha256))
        return landed
