"""Storing an uploaded distribution: verify the bytes, store create-only, index before answering.

Nothing is written until every check has passed, and a file that the indexer then refuses is
removed again, so a rejected upload leaves nothing behind. What the checks learnt (digests,
metadata, the project page and its ETag) goes to the indexer with the file, which reads none
of it again.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from skypi.api.attest import verify as verify_attestations
from skypi.core.attestations import check_subjects, provenance, provenance_href
from skypi.core.digests import hash_stream
from skypi.core.errors import UploadRejected
from skypi.core.filenames import DistFilename
from skypi.core.keys import provenance_key
from skypi.core.upload import UploadRequest, check_digests, check_metadata
from skypi.indexer.intake import Intake
from skypi.indexer.service import Indexer
from skypi.store.base import Store

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
        self.store, self.max_size = store, max_size
        self.intake = Intake(indexer)

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
        meta = self.intake.read_metadata(dist, fh, size)
        check_metadata(request, dist, meta)
        admitted = self.intake.admit(dist, sha256, str(meta.version))
        if admitted.identical:
            return  # an identical re-upload (twine retries, CI re-runs): nothing to do
        fh.seek(0)
        info = self.intake.store_new(admitted, fh)
        if info is None:
            return  # these very bytes were stored meanwhile: listed now
        facts = self.intake.facts(admitted, meta, info)
        stored = [admitted.key]
        if request.attestations and publisher_claims is not None:  # before the entry links it
            stored.append(provenance_key(request.project, dist.filename))
            self.store.put(stored[-1], provenance(request.attestations, publisher_claims))
            href = provenance_href(request.project, str(dist.version), dist.filename)
            facts = facts.with_provenance(href)
        problem = self.intake.list(admitted, facts)
        if problem is not None:
            self.intake.take_back(*stored)  # the indexer said why
            raise UploadRejected(problem.message)
        log.info("uploaded %s (%d bytes)", dist.filename, size)
