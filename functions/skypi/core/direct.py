"""What the API answers a direct upload (``skypi publish``), as both ends read it.

The API builds these answers and the client parses them: one definition, so a field renamed on
one side cannot go unnoticed on the other. Their JSON is the protocol: field order and spelling
are what the API has always sent (``wire``), and the client reads only what is declared here.

- ``POST /api/uploads`` answers :data:`PlanAnswer`: the file is published already
  (:class:`Finished`, ``exists``), or the requests to make (:class:`SingleUpload`, one
  presigned PUT; :class:`MultipartUpload`, the parts still missing and those stored already).
- ``POST /api/uploads/complete`` answers :data:`CompleteAnswer`: ``published``, ``exists``
  (another upload published these bytes), or ``accepted`` (:class:`Accepted`: stored, and
  listed once the index has hashed it).

>>> answer = SingleUpload(key="packages/a/a-1.0.tar.gz", marker="m",
...                       request=StorageRequest(method="PUT", url="https://s3/x", headers={}))
>>> answer.wire()["status"], answer.wire()["mode"]
('upload', 'single')
>>> read_plan(answer.wire()) == answer
True
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter


class UploadStatus(StrEnum):
    """Where a direct upload stands, as the API answers it."""

    EXISTS = "exists"  # these very bytes are published already: nothing to upload
    UPLOAD = "upload"  # send the bytes with the requests given
    PUBLISHED = "published"  # checked and listed
    ACCEPTED = "accepted"  # stored and checked by storage; listed once the index hashed it


class Transfer(StrEnum):
    """How the bytes go to storage."""

    SINGLE = "single"  # one presigned PUT bound to the file's SHA-256
    MULTIPART = "multipart"  # parts, each bound to its own SHA-256


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """The answer's JSON body, as the API sends it."""
        return self.model_dump(mode="json")


class StorageRequest(_Answer):
    """A request the client makes straight to storage: this URL, with these headers."""

    method: str
    url: str
    headers: dict[str, str]


class PartRequest(_Answer):
    """The presigned PUT of one part."""

    number: int
    method: str
    url: str
    headers: dict[str, str]


class StoredPart(_Answer):
    """A part storage holds already (a resumed upload skips it)."""

    number: int
    etag: str
    size: int = 0
    sha256: str | None = None


class Finished(_Answer):
    """Nothing left to send: the file is published (by this upload, or by another)."""

    status: Literal[UploadStatus.EXISTS, UploadStatus.PUBLISHED]
    filename: str
    url: str


class Accepted(_Answer):
    """Stored, too big to hash within the request: the index lists it within minutes."""

    status: Literal[UploadStatus.ACCEPTED] = UploadStatus.ACCEPTED
    filename: str
    url: str
    detail: str


class SingleUpload(_Answer):
    """One presigned, create-only PUT of the whole file."""

    status: Literal[UploadStatus.UPLOAD] = UploadStatus.UPLOAD
    mode: Literal[Transfer.SINGLE] = Transfer.SINGLE
    key: str
    marker: str  # which upload stored the object: complete names it again
    request: StorageRequest


class MultipartUpload(_Answer):
    """A multipart upload: the parts still to send, and those stored already."""

    status: Literal[UploadStatus.UPLOAD] = UploadStatus.UPLOAD
    mode: Literal[Transfer.MULTIPART] = Transfer.MULTIPART
    key: str
    marker: str | None  # as the client gave it with the upload it resumes
    upload_id: str
    part_size: int
    parts: list[PartRequest]
    done: list[StoredPart]


PlanAnswer = Finished | SingleUpload | MultipartUpload
CompleteAnswer = Finished | Accepted
_PLAN: TypeAdapter[PlanAnswer] = TypeAdapter(PlanAnswer)
_COMPLETE: TypeAdapter[CompleteAnswer] = TypeAdapter(CompleteAnswer)


def read_plan(body: Any) -> PlanAnswer:
    """The answer to ``POST /api/uploads`` (pydantic's ValidationError if it is none)."""
    return _PLAN.validate_python(body)


def read_complete(body: Any) -> CompleteAnswer:
    """The answer to ``POST /api/uploads/complete`` (ValidationError if it is none)."""
    return _COMPLETE.validate_python(body)


__all__ = [
    "Accepted",
    "CompleteAnswer",
    "Finished",
    "MultipartUpload",
    "PartRequest",
    "PlanAnswer",
    "SingleUpload",
    "StorageRequest",
    "StoredPart",
    "Transfer",
    "UploadStatus",
    "read_complete",
    "read_plan",
]
