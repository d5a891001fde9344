"""The upload API: the upload form of twine and ``uv publish`` (``/legacy/``, and ``/`` as
pypiserver takes it), and ``skypi publish``'s direct uploads (``/api/uploads``, then
``/api/uploads/complete``). Each needs an upload token for the project, where uploads need
one. Thin routes over :class:`skypi.api.publish.Uploader` and
:class:`skypi.api.direct.DirectUploader`: what a request may be (its size, its form, who
sends it) is checked here, what its file may be behind them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from packaging.utils import canonicalize_name
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.types import Message, Receive

from skypi.api.auth import Authenticator
from skypi.api.direct import Declared, DirectUploader
from skypi.api.publish import Uploader
from skypi.api.settings import Settings
from skypi.core.errors import (
    AuthFailure,
    InvalidDistribution,
    LengthRequired,
    RequestTooLarge,
    SkypiError,
    UploadRejected,
)
from skypi.core.filenames import parse_filename
from skypi.core.keys import SHA256_HEX
from skypi.core.tokens import Scope, TokenRecord
from skypi.core.upload import too_large, validate_filename, validate_form
from skypi.store.base import Part

MAX_FIELD_BYTES = 16 * 1024 * 1024  # long descriptions are sent as a form field
UPLOAD_PATHS = ("/legacy/", "/legacy", "/")  # twine, uv publish; `/` as pypiserver takes them
SHA256_FIELD = f"^{SHA256_HEX}$"


class UploadPlan(BaseModel):
    """A file the client will upload straight to storage (``skypi publish``)."""

    filename: str = Field(max_length=255)
    size: int = Field(gt=0)
    sha256: str = Field(pattern=SHA256_FIELD)
    resume_upload_id: str | None = Field(default=None, max_length=1024)
    marker: str | None = Field(default=None, max_length=64)
    part_size: int | None = Field(default=None, gt=0)
    part_sha256: list[Annotated[str, Field(pattern=SHA256_FIELD)]] = Field(
        default_factory=list, max_length=10_000
    )


class UploadedPart(BaseModel):
    number: int = Field(ge=1, le=10_000)
    etag: str = Field(max_length=128)
    sha256: str | None = Field(default=None, pattern=SHA256_FIELD)


class UploadComplete(BaseModel):
    filename: str = Field(max_length=255)
    size: int = Field(gt=0)
    sha256: str = Field(pattern=SHA256_FIELD)
    marker: str = Field(max_length=64)
    upload_id: str | None = Field(default=None, max_length=1024)
    parts: list[UploadedPart] | None = Field(default=None, max_length=10_000)


class Uploads:
    """Who may upload, and how large a request may be, for both ways of uploading."""

    def __init__(
        self, settings: Settings, auth: Authenticator, uploader: Uploader, direct: DirectUploader
    ) -> None:
        self.settings, self.auth = settings, auth
        self.uploader, self.direct = uploader, direct
        self.intake = uploader.intake

    async def form(self, request: Request) -> Response:
        """One file of the upload form (twine, ``uv publish``): stored and indexed before the
        answer, or refused leaving nothing behind."""
        header = request.headers.get("authorization")
        if self.settings.upload_auth:  # all that the headers can tell, checked before the body
            caller = await run_in_threadpool(self.auth.identify, header)
            if not caller.may(Scope.UPLOAD):
                raise AuthFailure(
                    "The given token isn't allowed to upload: create an upload token with "
                    "'skypi token create --scope upload'.",
                )
        form = await self._read_form(self._bounded(request))
        try:
            await self._publish(form, header)
        finally:
            await form.close()
        return PlainTextResponse("")

    def _bounded(self, request: Request) -> Request:
        """``request`` refused by its declared size, and its body read only up to the limit."""
        settings = self.settings
        if settings.max_request_size is not None and "content-length" not in request.headers:
            raise LengthRequired(  # as the edge does: a chunked body's size is unknown
                "Uploads must send Content-Length (twine and uv publish do)."
            )
        declared = _content_length(request.headers.get("content-length"))
        if settings.max_request_size is not None and declared > settings.max_request_size:
            raise RequestTooLarge(
                f"Upload too large for this endpoint: the request is {declared:,} bytes and "
                f"uploads through API Gateway and Lambda are capped at "
                f"{settings.max_request_size:,} bytes by AWS Lambda's 6 MB payload limit. "
                f"{settings.large_upload_hint}".strip()
            )
        refusal = too_large(settings.max_upload_size)
        if declared > settings.max_upload_size + MAX_FIELD_BYTES:
            raise refusal
        # A chunked body declares no length: count what arrives, and stop reading at the limit.
        return Request(request.scope, _bounded(request.receive, settings.max_upload_size, refusal))

    @staticmethod
    async def _read_form(request: Request) -> FormData:
        try:
            return await request.form(max_part_size=MAX_FIELD_BYTES)
        except SkypiError:
            raise
        except Exception as exc:
            raise UploadRejected(f"Malformed upload form: {exc}") from exc

    async def _publish(self, form: FormData, header: str | None) -> None:
        """The form's fields checked, its caller allowed for its project, its file taken in."""
        fields = {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}
        upload_request = validate_form(fields)
        record = None
        if self.settings.upload_auth:
            record = await run_in_threadpool(
                self.auth.require, header, Scope.UPLOAD, upload_request.project
            )
        content = form.get("content")
        if not isinstance(content, UploadFile) or content.filename is None:
            raise UploadRejected("Upload payload does not have a file.")
        dist = validate_filename(upload_request, content.filename)
        await run_in_threadpool(self.namespace_check, record, upload_request.project)
        claims = record.claims if record is not None and record.publisher else None
        await run_in_threadpool(self.uploader.publish, upload_request, dist, content.file, claims)

    def namespace_check(self, caller: TokenRecord | None, project: str) -> None:
        """PEP 752: 409 when ``project`` is in a namespace ``caller`` holds no grant for (a
        caller without a token, on an index that takes uploads without one, holds none)."""
        self.intake.check_caller(project, caller.principal if caller else "")

    def direct_caller(self, header: str | None, filename: str) -> None:
        """Refuse a direct upload of ``filename`` that its caller may not make, or that its
        project takes no more of (archived, quarantined)."""
        try:
            project = parse_filename(filename).project
        except InvalidDistribution as exc:
            raise UploadRejected(str(exc)) from exc
        caller = (
            self.auth.require(header, Scope.UPLOAD, project) if self.settings.upload_auth else None
        )
        self.namespace_check(caller, project)
        refusal = self.intake.closed(canonicalize_name(project))
        if refusal:
            raise UploadRejected(refusal)


def add_routes(api: FastAPI, uploads: Uploads) -> None:
    """Add the upload routes to ``api``."""
    router = APIRouter()
    direct = uploads.direct

    @router.post("/api/uploads")
    async def plan_upload(
        body: UploadPlan, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """Presigned, create-only requests to upload one file straight to storage."""
        await run_in_threadpool(uploads.direct_caller, authorization, body.filename)
        declared = Declared(
            body.filename, body.size, body.sha256, body.part_size, tuple(body.part_sha256)
        )
        plan = await run_in_threadpool(direct.plan, declared, body.resume_upload_id, body.marker)
        return JSONResponse(plan.wire())

    @router.post("/api/uploads/complete")
    async def complete_upload(
        body: UploadComplete, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """Check what landed (size, SHA-256, metadata) and index it, or delete it."""
        await run_in_threadpool(uploads.direct_caller, authorization, body.filename)
        declared = Declared(body.filename, body.size, body.sha256)
        parts = (
            [Part(p.number, p.etag, sha256=p.sha256) for p in body.parts]
            if body.parts is not None
            else None
        )
        result = await run_in_threadpool(
            direct.complete, declared, body.marker, body.upload_id, parts
        )
        return JSONResponse(result.wire())

    api.include_router(router)
    for path in UPLOAD_PATHS:
        api.add_api_route(
            path, uploads.form, methods=["POST"], include_in_schema=path == "/legacy/"
        )


def _bounded(receive: Receive, limit: int, refusal: UploadRejected) -> Receive:
    """``receive`` that raises ``refusal`` once the body passes ``limit`` plus room for the
    form's text fields, however the body is framed."""
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit + MAX_FIELD_BYTES:
            raise refusal
        return message

    return bounded


def _content_length(header: str | None) -> int:
    try:
        return max(0, int(header or 0))
    except ValueError:
        raise UploadRejected("Malformed Content-Length header.") from None
