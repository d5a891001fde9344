"""How a file comes in through the API (twine and ``uv publish``, ``skypi publish``'s direct
uploads): admit it (a dry run of the plan against the page as stored), store it create-only,
list it (the plan again, at the page's swap), and take it out again when it is refused.

The upload routes see only this: what the indexer reads and keeps (its page writer, its
metadata limits, how it hashes a stored file) stays behind it.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from packaging.utils import NormalizedName

from skypi.core.admission import Candidate, Decision, Verdict, already_exists, decide
from skypi.core.errors import ReadOnly, UploadRejected
from skypi.core.filenames import DistFilename
from skypi.core.plan import Facts, facts_of
from skypi.core.upload import UploadRequest, receive
from skypi.indexer.changes import Landed
from skypi.indexer.service import Indexer
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


Verifier = Callable[[Sequence[Mapping[str, Any]], str, str, Mapping[str, str]], None]


class Intake:
    """Admit, store, list, take back: one file of an upload at a time. ``verify`` checks PEP
    740 attestations against a trusted publisher (the API's, with sigstore)."""

    def __init__(self, indexer: Indexer, verify: Verifier | None = None) -> None:
        self.indexer = indexer
        self.store = indexer.store
        self.verify = verify

    def upload(
        self,
        request: UploadRequest,
        dist: DistFilename,
        fh: BinaryIO,
        limit: int,
        claims: Mapping[str, str] | None = None,
    ) -> None:
        """Take one file of the upload API (twine, ``uv publish``): check it, admit it, store
        it, list it; or raise :class:`UploadRejected`, leaving nothing behind."""
        received = receive(request, dist, fh, limit, self.indexer.limits, claims)
        if request.attestations and claims is not None:  # signed by the trusted publisher?
            if self.verify is None:
                raise UploadRejected("This index cannot verify attestations.")
            self.verify(request.attestations, dist.filename, received.sha256, claims)
        admitted = self.admit(dist, received.sha256, str(received.meta.version))
        if admitted.identical:  # an identical re-upload (twine retries, CI re-runs)
            return
        fh.seek(0)
        info = self.store_new(admitted, fh)
        if info is None:
            return  # these very bytes were stored meanwhile: listed now
        facts = facts_of(dist, received.meta, info, received.sha256)
        stored = [admitted.key]
        if received.provenance is not None:  # stored before the entry links it
            stored.append(received.provenance.key)
            self.store.put(received.provenance.key, received.provenance.document)
            facts = facts.with_provenance(received.provenance.href)
        problem = self.list(admitted, facts)
        if problem is not None:
            self.take_back(*stored)  # the indexer said why
            raise UploadRejected(problem.message)
        log.info("uploaded %s (%d bytes)", dist.filename, received.size)

    def check_caller(self, project: str, principal: str) -> None:
        """PEP 752: :class:`~skypi.core.errors.Conflict` (409) when ``project`` is in a
        namespace that ``principal`` holds no grant for ("": a caller without a token)."""
        self.indexer.namespaces.all().check(project, principal)

    def closed(self, project: NormalizedName) -> str | None:
        """Why ``project`` takes no new files now (PEP 792: archived, quarantined), or None:
        what a direct upload is told before it sends any byte."""
        page = self.indexer.pages.read(project).page
        return page.upload_refusal() if page else None

    def admit(self, dist: DistFilename, sha256: str, version: str | None = None) -> Admission:
        """The upload rules' answer for this file, before any byte is stored: raises
        :class:`UploadRejected` with why it is refused. ``version``: the metadata's, when read
        (else the filename's).

        A file listed already with these very bytes is answered only once what follows its
        page lists it too: whoever listed it may be part-way through writing that (the file's
        storage event at the indexer, another process; this very upload, sent before and
        answered 5xx after its page's swap), so it is written here unless it was."""
        state = self.indexer.pages.read(dist.project)
        candidate = Candidate.upload(dist, sha256, version)
        decision = decide(state.page, candidate)
        if decision.refused:
            raise decision.error()
        identical = decision.verdict is Verdict.IDENTICAL
        if identical:
            self.indexer.pages.catch_up(state)
        return Admission(dist, candidate.key, sha256, state, identical)

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
