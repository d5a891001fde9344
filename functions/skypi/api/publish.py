"""Storing an uploaded distribution: verify the bytes, store create-only, index before answering.

Nothing is written until every check has passed, and a file that the indexer then refuses is
removed again, so a rejected upload leaves nothing behind.
"""

from __future__ import annotations

import errno
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import BinaryIO

from skypi.api.attest import verify as verify_attestations
from skypi.core.attestations import check_subjects, provenance, provenance_href, provenance_key
from skypi.core.errors import InvalidDistribution, ReadOnly, UploadRejected
from skypi.core.filenames import DistFilename
from skypi.core.metadata import read_metadata
from skypi.core.upload import UploadRequest, check_digests, check_metadata
from skypi.indexer.service import Indexer, Landed
from skypi.store.base import PreconditionFailed, Store

log = logging.getLogger("skypi.upload")
ONE_SDIST = "Only one sdist may be uploaded per release."


def _digests(fh: BinaryIO, limit: int) -> tuple[int, dict[str, str]]:
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    blake2 = hashlib.blake2b(digest_size=32)
    size = 0
    fh.seek(0)
    while chunk := fh.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise UploadRejected(
                f"File too large. Limit for this index is {limit // (1024 * 1024)} MiB "
                "(skypi serve --max-upload-size)."
            )
        md5.update(chunk)
        sha256.update(chunk)
        blake2.update(chunk)
    return size, {
        "md5_digest": md5.hexdigest(),
        "sha256_digest": sha256.hexdigest(),
        "blake2_256_digest": blake2.hexdigest(),
    }


def _already_exists(filename: str, blake2: str) -> UploadRejected:
    return UploadRejected(
        f"File already exists ({filename!r}, with blake2_256 hash {blake2!r}). "
        "A published file never changes: upload a new version instead."
    )


class Publisher:
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
        if request.attestations:
            if publisher_claims is None:
                raise UploadRejected(
                    "Invalid attestations supplied during upload: attestations are taken only "
                    "from uploads with trusted publishing; re-run without them "
                    "(uv publish --no-attestations)."
                )
            check_subjects(request.attestations, dist.filename, computed["sha256_digest"])
            verify_attestations(
                request.attestations, dist.filename, computed["sha256_digest"], publisher_claims
            )

        def read_at(start: int, length: int) -> bytes:
            fh.seek(start)
            return fh.read(length)

        @contextmanager
        def reopen() -> Iterator[BinaryIO]:
            fh.seek(0)
            yield fh  # the caller owns the spooled file: do not close it here

        try:
            meta = read_metadata(dist, size, read_at, reopen, self.indexer.limits)
        except InvalidDistribution as exc:
            raise UploadRejected(str(exc)) from exc
        check_metadata(request, dist, meta)

        sha256 = computed["sha256_digest"]
        page, _ = self.indexer.read_page(request.project)
        refusal = page.upload_refusal() if page else None
        if refusal:
            raise UploadRejected(refusal)
        existing = page.find(dist.filename) if page else None
        if existing is not None:
            if existing.sha256 == sha256:
                return  # an identical re-upload (twine retries, CI re-runs): nothing to do
            raise _already_exists(dist.filename, computed["blake2_256_digest"])
        if page and dist.kind == "sdist" and page.has_sdist(str(meta.version)):
            raise UploadRejected(ONE_SDIST)

        key = f"packages/{request.project}/{dist.filename}"
        fh.seek(0)
        try:
            self.store.put(key, fh, if_none_match=True, sha256=sha256)
        except PreconditionFailed:
            if self.indexer.sha256_of(key) == sha256:
                self.indexer.apply([Landed(key, sha256)])
                return
            raise _already_exists(dist.filename, computed["blake2_256_digest"]) from None
        except OSError as exc:
            if exc.errno not in {errno.EACCES, errno.EPERM, errno.EROFS}:
                raise
            # a read-only folder, served with --state-dir
            raise ReadOnly("This index does not accept uploads: its folder is read-only.") from exc
        outcome = self.indexer.apply([Landed(key, sha256)])
        problems = [m for k, m in outcome.refused + outcome.conflicts if k == key]
        if problems:
            self.store.delete(key)
            log.warning("upload of %s refused after storing: %s", dist.filename, problems[0])
            if "already indexed" in problems[0]:
                raise _already_exists(dist.filename, computed["blake2_256_digest"])
            raise UploadRejected(problems[0])
        if request.attestations and publisher_claims is not None:
            self._attach(request, dist, publisher_claims)
        log.info("uploaded %s (%d bytes)", dist.filename, size)

    def _attach(self, request: UploadRequest, dist: DistFilename, claims: dict[str, str]) -> None:
        """Store the file's provenance (PEP 740) and link it from its JSON entry."""
        key = provenance_key(request.project, dist.filename)
        self.store.put(key, provenance(request.attestations, claims))
        href = provenance_href(request.project, str(dist.version), dist.filename)
        self.indexer.update_files(
            request.project,
            lambda e: replace(e, provenance=href) if e.filename == dist.filename else None,
        )
