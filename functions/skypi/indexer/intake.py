"""How a file comes in through the API (twine and ``uv publish``, ``skypi publish``'s direct
uploads): admit it (a dry run of the plan against the page as stored), store it create-only,
list it (the plan again, at the page's swap), and take it out again when it is refused.

The upload routes see only this: what the indexer reads and keeps (its page writer, its
metadata limits, how it hashes a stored file) stays behind it.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import BinaryIO

from skypi.core.admission import Candidate, Decision, Verdict, already_exists, decide
from skypi.core.errors import InvalidDistribution, ReadOnly, UploadRejected
from skypi.core.filenames import DistFilename
from skypi.core.keys import file_key
from skypi.core.metadata import CoreMetadata, read_file_metadata
from skypi.indexer.changes import Facts, Landed
from skypi.indexer.service import Indexer, facts_of
from skypi.indexer.writer import Stored
from skypi.store.base import ObjectInfo, PreconditionFailed

log = logging.getLogger("skypi.intake")


@dataclass(frozen=True)
class Admission:
    """A file the upload rules admit, against the page as read (kept for the listing's first
    swap), or one whose very bytes are published already (``identical``)."""

    dist: DistFilename
    key: str
    sha256: str
    page: Stored
    identical: bool


class Intake:
    """Admit, store, list, take back: one file of an upload at a time."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer
        self.store = indexer.store

    def read_metadata(self, dist: DistFilename, fh: BinaryIO, size: int) -> CoreMetadata:
        """The core metadata of an uploaded file, within the index's limits."""
        try:
            return read_file_metadata(dist, fh, size, self.indexer.limits)
        except InvalidDistribution as exc:
            raise UploadRejected(str(exc)) from exc

    def admit(self, dist: DistFilename, sha256: str, version: str | None = None) -> Admission:
        """The upload rules' answer for this file, before any byte is stored: raises
        :class:`UploadRejected` with why it is refused. ``version``: the metadata's, when read
        (else the filename's)."""
        state = self.indexer.pages.read(dist.project)
        key = file_key(dist.project, dist.filename)
        candidate = Candidate(dist.filename, key, version or str(dist.version), dist.kind, sha256)
        decision = decide(state.page, candidate)
        if decision.refused:
            raise decision.error()
        return Admission(dist, key, sha256, state, decision.verdict is Verdict.IDENTICAL)

    def store_new(self, admitted: Admission, body: BinaryIO) -> ObjectInfo | None:
        """Store the file create-only; None when these very bytes were stored meanwhile (a
        concurrent upload, a drop-in), which are then listed. Other bytes stored meanwhile
        under its name refuse it."""
        try:
            return self.store.put(admitted.key, body, if_none_match=True, sha256=admitted.sha256)
        except PreconditionFailed:
            there = self.store.head(admitted.key)
            stored = (
                there.sha256 if there and there.sha256 else self.indexer.sha256_of(admitted.key)
            )
            if stored != admitted.sha256:
                raise UploadRejected(
                    already_exists(admitted.dist.filename, admitted.sha256)
                ) from None
            self.indexer.apply([Landed(admitted.key, admitted.sha256, upload=True)])
            return None
        except OSError as exc:
            if exc.errno not in {errno.EACCES, errno.EPERM, errno.EROFS}:
                raise
            # a read-only folder, served with --state-dir
            raise ReadOnly("This index does not accept uploads: its folder is read-only.") from exc

    def facts(self, admitted: Admission, meta: CoreMetadata, info: ObjectInfo) -> Facts:
        """What the stored file's entry will say, from what the upload read of it."""
        return facts_of(admitted.dist, meta, info, admitted.sha256)

    def sha256_of(self, key: str, deadline: float | None = None) -> str:
        """Hash a stored file (:class:`~skypi.indexer.service.HashTimeout` past ``deadline``)."""
        return self.indexer.sha256_of(key, deadline)

    def list(self, admitted: Admission, facts: Facts | None = None) -> Decision | None:
        """List the stored file (the plan, at the page's swap); the decision if it was not
        listed (a concurrent upload won its name, the project closed meanwhile)."""
        landed = Landed(admitted.key, admitted.sha256, facts, admitted.page, upload=True)
        return self.indexer.apply([landed]).problem(admitted.key)

    def take_back(self, *keys: str) -> None:
        """Remove what a refused upload stored: it leaves nothing behind."""
        for key in keys:
            self.store.delete(key)
        log.info("removed %s again: the index refused it", ", ".join(keys))
