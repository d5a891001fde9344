"""Storing an uploaded distribution: verify the bytes, store create-only, index before answering.

Nothing is written until every check has passed, and a file that the indexer then refuses is
removed again, so a rejected upload leaves nothing behind. What the checks learnt (digests,
metadata, the project page and its ETag) goes to the indexer with the file, which reads none
of it again.
"""

from __future__ import annotations

from typing import BinaryIO

from skypi.api.attest import verify as verify_attestations
from skypi.core.filenames import DistFilename
from skypi.core.upload import UploadRequest
from skypi.indexer.intake import Intake
from skypi.indexer.service import Indexer
from skypi.store.base import Store


class Uploader:
    """Takes one file of the upload API (twine, ``uv publish``) into storage and the index:
    the intake does it all, with PEP 740 attestations verified here (sigstore is the API's)."""

    def __init__(self, store: Store, indexer: Indexer, max_size: int) -> None:
        self.store, self.max_size = store, max_size
        self.intake = Intake(indexer, verify=verify_attestations)

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
        self.intake.upload(request, dist, fh, self.max_size, publisher_claims)
