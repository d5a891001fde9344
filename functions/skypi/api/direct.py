"""Direct uploads for files of any size (``skypi publish``).

1. ``plan``: the client names the file, its size and SHA-256. The API checks what it can
   without the bytes (name, duplicates, one sdist per release). It answers with presigned,
   create-only requests to the store, bound to the key (and, for a single PUT, to the SHA-256,
   which S3 verifies). Big files get a multipart upload in the parts the client declares with
   their SHA-256 each (signed into each part's URL: S3 verifies them, and a bucket with Object
   Lock takes no part without one). The client can resume: asking again with the upload id
   returns only the parts still missing.
2. ``complete``: the API checks what landed, like any upload:
   - the object carries this upload's marker (so no other upload's file is ever judged or
     deleted);
   - its size and SHA-256, hashed from storage, are the ones declared;
   - its metadata names the project and version of its filename.

   Then it indexes the file, or deletes it and says why.

The answers are the models of :mod:`skypi.core.direct`, which the client reads too.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from skypi.core.direct import (
    Accepted,
    CompleteAnswer,
    Finished,
    MultipartUpload,
    PartRequest,
    PlanAnswer,
    SingleUpload,
    StorageRequest,
    StoredPart,
    UploadStatus,
)
from skypi.core.errors import (
    Conflict,
    DoesNotExist,
    InvalidDistribution,
    NotSupported,
    UploadRejected,
)
from skypi.core.filenames import DistFilename, check_safe_filename, parse_filename
from skypi.core.keys import is_sha256
from skypi.core.pages import file_href
from skypi.core.parts import MULTIPART_FROM, check_parts, part_ranges
from skypi.indexer.intake import Admission, Intake
from skypi.indexer.service import HashTimeout, Indexer
from skypi.store.base import (
    DirectUploads,
    NotFound,
    Part,
    PreconditionFailed,
    Store,
    UploadConflict,
)

log = logging.getLogger("skypi.direct")
URL_TTL = 3600


@dataclass(frozen=True)
class Declared:
    """What the client says it is uploading."""

    filename: str
    size: int
    sha256: str
    part_size: int | None = None  # a multipart upload's parts, and the SHA-256 of each
    part_sha256: tuple[str, ...] = ()


def _dist(declared: Declared, max_size: int) -> DistFilename:
    try:
        check_safe_filename(declared.filename)
        dist = parse_filename(declared.filename)
    except InvalidDistribution as exc:
        raise UploadRejected(str(exc)) from exc
    if not is_sha256(declared.sha256):
        raise UploadRejected("sha256 must be 64 lowercase hex digits.")
    if not 0 < declared.size <= max_size:
        raise UploadRejected(
            f"File size {declared.size:,} is outside what this index takes "
            f"(1 byte to {max_size:,} bytes)."
        )
    return dist


class DirectUploader:
    def __init__(
        self, store: Store, indexer: Indexer, max_size: int, hash_seconds: float | None = None
    ) -> None:
        self.store = store
        self.intake = Intake(indexer)
        self.max_size = max_size
        self.hash_seconds = hash_seconds  # how long complete may hash (API Gateway's 30 s)

    def _direct(self) -> DirectUploads:
        if not isinstance(self.store, DirectUploads):
            raise NotSupported(
                "This index takes uploads through /legacy/ only (it stores files on its own "
                "disk): use twine upload, uv publish, or copy the file into its folder."
            )
        return self.store

    def _admit(self, dist: DistFilename, sha256: str) -> tuple[Admission, Finished | None]:
        """The admission, and ``exists`` if this very file is published already; the upload
        rules' refusal otherwise."""
        admitted = self.intake.admit(dist, sha256)
        if admitted.identical:
            url = file_href(admitted.key)
            return admitted, Finished(status=UploadStatus.EXISTS, filename=dist.filename, url=url)
        return admitted, None

    def plan(
        self, declared: Declared, resume: str | None = None, marker: str | None = None
    ) -> PlanAnswer:
        """The requests to make; ``resume`` (an upload id, with its ``marker``) continues a
        multipart upload with the parts still missing."""
        dist = _dist(declared, self.max_size)
        admitted, done = self._admit(dist, declared.sha256)
        if done:
            return done
        store = self._direct()
        key = admitted.key
        if declared.size < MULTIPART_FROM and resume is None:
            marker = secrets.token_urlsafe(16)
            request = store.presigned_put(key, declared.sha256, declared.size, marker, URL_TTL)
            return SingleUpload(key=key, marker=marker, request=StorageRequest(**request.__dict__))
        size = check_parts(declared.size, declared.part_size, declared.part_sha256)
        if resume is None:
            marker = secrets.token_urlsafe(16)
            upload_id, done_parts = store.start_multipart(key, marker), []
        else:
            upload_id = resume
            try:
                done_parts = store.uploaded_parts(key, upload_id)
            except NotFound:
                raise DoesNotExist(
                    "That upload is gone (completed, aborted or expired): start again."
                ) from None
        have = {p.number for p in done_parts}
        ranges = part_ranges(declared.size, size)
        return MultipartUpload(
            key=key,
            marker=marker,
            upload_id=upload_id,
            part_size=size,
            parts=[
                PartRequest(
                    number=n,
                    **store.presigned_part(
                        key, upload_id, n, declared.part_sha256[n - 1], length, URL_TTL
                    ).__dict__,
                )
                for n, (_, length) in enumerate(ranges, start=1)
                if n not in have
            ],
            done=[StoredPart(**p.__dict__) for p in done_parts],
        )

    def complete(
        self,
        declared: Declared,
        marker: str,
        upload_id: str | None = None,
        parts: list[Part] | None = None,
    ) -> CompleteAnswer:
        dist = _dist(declared, self.max_size)
        store = self._direct()
        admitted, done = self._admit(dist, declared.sha256)
        key = admitted.key
        if done:
            # The object's S3 event may have reached the indexer first: if what it listed is
            # this upload's object, this upload is what got published.
            if marker and store.marker_of(key) == marker:
                return done.model_copy(update={"status": UploadStatus.PUBLISHED})
            return done
        if upload_id is not None:
            _complete_multipart(store, dist, key, upload_id, parts or [])
        info = self.store.head(key)
        if info is None:
            raise UploadRejected("Nothing was uploaded for this file: upload it, then complete.")
        if not marker or store.marker_of(key) != marker:
            raise Conflict(f"{dist.filename} was stored by another upload.")
        problem = None
        if info.size != declared.size:
            problem = f"size mismatch: declared {declared.size:,} bytes, stored {info.size:,}"
        else:
            deadline = None if self.hash_seconds is None else time.monotonic() + self.hash_seconds
            try:
                actual = self.intake.sha256_of(key, deadline)
            except HashTimeout:
                # S3 checked every part against the SHA-256 the client declared for it; the
                # indexer, woken by this object's event, hashes it with more time and lists it.
                log.info("%s is too big to hash in this request: left to the indexer", key)
                return Accepted(
                    filename=dist.filename,
                    url=file_href(key),
                    detail="Stored; too big to hash within this request, so the index "
                    "hashes it and lists it within minutes.",
                )
            if actual != declared.sha256:
                problem = f"sha256 mismatch: declared {declared.sha256}, stored {actual}"
        if problem is None:
            found = self.intake.list(admitted)
            problem = found.message if found else None
        if problem is not None:
            self.intake.take_back(key)
            log.warning("direct upload of %s refused: %s", dist.filename, problem)
            raise UploadRejected(f"Upload of {dist.filename} refused: {problem}")
        log.info("published %s (%d bytes) directly", dist.filename, info.size)
        url = file_href(key)
        return Finished(status=UploadStatus.PUBLISHED, filename=dist.filename, url=url)


def _complete_multipart(
    store: DirectUploads, dist: DistFilename, key: str, upload_id: str, parts: list[Part]
) -> None:
    """Join the parts the client uploaded into the file; Conflict when another upload's file
    is there, or storage refused it for another write meanwhile (that upload is aborted)."""
    try:
        store.complete_multipart(key, upload_id, parts)
    except PreconditionFailed:
        raise Conflict(f"{dist.filename} was stored by another upload.") from None
    except UploadConflict:
        store.abort_multipart(key, upload_id)
        raise Conflict(
            f"Storage refused to complete {dist.filename}: another write to the same "
            "key happened meanwhile (S3 409 ConditionalRequestConflict). Nothing was "
            "published; run skypi publish again to start a new upload."
        ) from None
    except NotFound as exc:
        raise UploadRejected(f"The upload is not complete: {exc.args[0]}") from None
