"""Storing an uploaded distribution: verify the bytes, store create-only, index before answering.

Nothing is written until every check has passed, and a file that the indexer then refuses is
removed again, so a rejected upload leaves nothing behind. What the checks learnt (digests,
metadata, the project page and its ETag) goes to the indexer with the file, which reads none
of it again.
"""

from __future__ import annotations

import errno
import logging
from typing import BinaryIO

from skypi.api.attest import verify as verify_attestations
from skypi.core.admission import Candidate, Verdict, already_exists, decide
from skypi.core.attestations import check_subjects, provenance, provenance_href
from skypi.core.digests import hash_stream
from skypi.core.errors import InvalidDistribution, ReadOnly, UploadRejected
from skypi.core.filenames import DistFilename
from skypi.core.keys import file_key, provenance_key
from skypi.core.metadata import read_file_metadata
from skypi.core.upload import UploadRequest, check_digests, check_metadata
from skypi.indexer.service import Indexer, Landed, facts_of
from skypi.store.base import PreconditionFailed, Store

log = logging.getLogger("skypi.upload")
FORM_DIGESTS = ("md5", "sha256", "blake2_256")  # what the upload form may carry


def _digests(fh: BinaryIO, limit: int) -> tuple[int, dict[str, str]]:
    """The size and the form's digests (``<name>_digest``) of the received file."""

    def within(size: int) -> None:
        if size > limit:
            raise UploadRejected(
                f"File too large. Limit for this index is {limit // (1024 * 1024)} MiB "
                "(skypi serve --max-upload-size)."
            )

    fh.seek(0)
    size, found = hash_stream(fh, FORM_DIGESTS, check=within)
    return size, {f"{name}_digest": value for name, value in found.items()}


class Uploader:
    """Takes one file of the upload API (twine, ``uv publish``) into storage and the index."""

    def __init__(self, store: Store, indexer: Indexer, max_size: int) -> None:
        self.store, self.indexer, self.max_size = store, indexer, max_size

    def publish(
        self,
        request: UploadRequest,
        dist: DistFilename,
        fh: BinaryIO,
        publisher_claims: dict[str, str] | None = None,
    ) -> None:
        """Store and index one uploaded file, or raise :class:`UploadRejected`.
        ``publisher_claims``: the trusted publisher's, when the upload token was minted for one
        (PEP 740 attestations are taken only then)."""
        size, computed = _digests(fh, self.max_size)
        check_digests(request, computed)
        sha256 = computed["sha256_digest"]
        if request.attestations:
            if publisher_claims is None:
                raise UploadRejected(
                    "Invalid attestations supplied during upload: attestations are taken only "
                    "from uploads with trusted publishing; re-run without them "
                    "(uv publish --no-attestations)."
                )
            check_subjects(request.attestations, dist.filename, sha256)
            verify_attestations(request.attestations, dist.filename, sha256, publisher_claims)
        try:
            meta = read_file_metadata(dist, fh, size, self.indexer.limits)
        except InvalidDistribution as exc:
            raise UploadRejected(str(exc)) from exc
        check_metadata(request, dist, meta)

        key = file_key(request.project, dist.filename)
        state = self.indexer.pages.read(request.project)
        candidate = Candidate(dist.filename, key, str(meta.version), dist.kind, sha256)
        decision = decide(state.page, candidate)
        if decision.verdict is Verdict.IDENTICAL:
            return  # an identical re-upload (twine retries, CI re-runs): nothing to do
        if decision.refused:
            raise decision.error()

        fh.seek(0)
        try:
            info = self.store.put(key, fh, if_none_match=True, sha256=sha256)
        except PreconditionFailed:  # stored meanwhile (a concurrent upload, a drop-in)
            there = self.store.head(key)
            stored = there.sha256 if there and there.sha256 else self.indexer.sha256_of(key)
            if stored == sha256:
                self.indexer.apply([Landed(key, sha256, upload=True)])
                return
            raise UploadRejected(already_exists(dist.filename, sha256)) from None
        except OSError as exc:
            if exc.errno not in {errno.EACCES, errno.EPERM, errno.EROFS}:
                raise
            # a read-only folder, served with --state-dir
            raise ReadOnly("This index does not accept uploads: its folder is read-only.") from exc
        facts = facts_of(dist, meta, info, sha256)
        attested = bool(request.attestations) and publisher_claims is not None
        if attested and publisher_claims is not None:  # stored before the entry links to it
            self.store.put(
                provenance_key(request.project, dist.filename),
                provenance(request.attestations, publisher_claims),
            )
            href = provenance_href(request.project, str(dist.version), dist.filename)
            facts = facts.with_provenance(href)
        outcome = self.indexer.apply([Landed(key, sha256, facts, state, upload=True)])
        problem = outcome.problem(key)
        if problem is not None:
            self.store.delete(key)
            if attested:
                self.store.delete(provenance_key(request.project, dist.filename))
            log.info("removed %s again: the index refused it", key)  # the indexer said why
            raise UploadRejected(problem.message)
        log.info("uploaded %s (%d bytes)", dist.filename, size)
