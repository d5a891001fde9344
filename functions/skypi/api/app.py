"""The application: upload API, admin API, health, and the read path, over one store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

import skypi
from skypi.api.auth import Authenticator, AuthFailure
from skypi.api.direct import Declared, DirectUploader
from skypi.api.oidc import TokenExchange, add_routes
from skypi.api.publish import Publisher
from skypi.api.reads import ReadRoutes
from skypi.api.settings import Settings
from skypi.core.attestations import PROVENANCE_TYPE, provenance_key
from skypi.core.errors import InvalidDistribution, SkypiError, UploadRejected
from skypi.core.filenames import parse_filename
from skypi.core.pages import FileEntry
from skypi.core.reason import REASON_HEADER, reason_phrase
from skypi.core.upload import validate_filename, validate_form
from skypi.indexer.service import Gone, Indexer
from skypi.store.base import NotFound, Part, Store
from skypi.store.publishers import PublisherRepository, PublisherStore
from skypi.store.tokens import TokenRepository, TokenStore

if TYPE_CHECKING:  # botocore is not needed to serve a folder (`skypi serve`, no aws extra)
    from skypi.store.cdn import Cdn

log = logging.getLogger("skypi.api")
MAX_FIELD_BYTES = 16 * 1024 * 1024  # long descriptions are sent as a form field
UPLOAD_PATHS = ("/legacy/", "/legacy", "/")  # twine, uv publish; `/` as pypiserver takes them


class UploadPlan(BaseModel):
    """A file the client will upload straight to storage (``skypi publish``)."""

    filename: str = Field(max_length=255)
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    resume_upload_id: str | None = Field(default=None, max_length=1024)
    marker: str | None = Field(default=None, max_length=64)
    part_size: int | None = Field(default=None, gt=0)
    part_sha256: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = Field(
        default_factory=list, max_length=10_000
    )


class UploadedPart(BaseModel):
    number: int = Field(ge=1, le=10_000)
    etag: str = Field(max_length=128)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class UploadComplete(BaseModel):
    filename: str = Field(max_length=255)
    size: int = Field(gt=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    marker: str = Field(max_length=64)
    upload_id: str | None = Field(default=None, max_length=1024)
    parts: list[UploadedPart] | None = Field(default=None, max_length=10_000)


class StatusRequest(BaseModel):
    """PEP 792: active, archived, deprecated or quarantined, with an optional reason."""

    status: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=1000)


class YankRequest(BaseModel):
    """Which files: one ``filename``, or every file of ``version``."""

    filename: str | None = None
    version: str | None = None
    reason: str = Field(default="", max_length=1000)


def _error(exc: SkypiError | AuthFailure) -> Response:
    """The message in the body (uv, pip) and as the reason phrase (twine shows only that)."""
    message = exc.message if isinstance(exc, AuthFailure) else str(exc)
    headers = dict(exc.headers) if isinstance(exc, AuthFailure) else {}
    headers[REASON_HEADER] = reason_phrase(message)
    return PlainTextResponse(message + "\n", exc.status, headers=headers)


def create_app(
    store: Store,
    settings: Settings | None = None,
    tokens: TokenStore | None = None,
    cdn: Cdn | None = None,
    publishers: PublisherStore | None = None,
) -> Any:
    """The whole HTTP surface as one ASGI app; tokens and trusted publishers live in ``store``
    unless given; ``cdn`` is told about deleted files (none locally: nothing caches them there)."""
    settings = settings or Settings()
    indexer = Indexer(store, cdn=cdn)
    tokens = tokens or TokenRepository(store)
    auth = Authenticator(tokens)
    publisher = Publisher(store, indexer, settings.max_upload_size)
    api = FastAPI(
        title="skypi",
        version=skypi.__version__,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )

    @api.exception_handler(SkypiError)
    async def _skypi_error(_request: Request, exc: SkypiError) -> Response:
        return _error(exc)

    @api.exception_handler(AuthFailure)
    async def _auth_error(_request: Request, exc: AuthFailure) -> Response:
        return _error(exc)

    @api.get(settings.health_path, include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": skypi.__version__}

    async def upload(request: Request) -> Response:
        header = request.headers.get("authorization")
        if settings.upload_auth:  # all that the headers can tell, checked before the body
            caller = await run_in_threadpool(auth.identify, header)
            if not caller.may("upload"):
                raise AuthFailure(
                    403,
                    "The given token isn't allowed to upload: create an upload token with "
                    "'skypi token create --scope upload'.",
                )
        if settings.max_request_size is not None and "content-length" not in request.headers:
            raise UploadRejected(  # as the edge does: a chunked body's size is unknown
                "Uploads must send Content-Length (twine and uv publish do).", status=411
            )
        declared = _content_length(request.headers.get("content-length"))
        if settings.max_request_size is not None and declared > settings.max_request_size:
            raise UploadRejected(
                f"Upload too large for this endpoint: the request is {declared:,} bytes and "
                f"uploads through API Gateway and Lambda are capped at "
                f"{settings.max_request_size:,} bytes by AWS Lambda's 6 MB payload limit. "
                f"{settings.large_upload_hint}".strip(),
                status=413,
            )
        too_large = UploadRejected(
            f"File too large. Limit for this index is "
            f"{settings.max_upload_size // (1024 * 1024)} MiB (skypi serve --max-upload-size)."
        )
        if declared > settings.max_upload_size + MAX_FIELD_BYTES:
            raise too_large
        # A chunked body declares no length: count what arrives, and stop reading at the limit.
        request = Request(
            request.scope, _bounded(request.receive, settings.max_upload_size, too_large)
        )
        try:
            form = await request.form(max_part_size=MAX_FIELD_BYTES)
        except UploadRejected:
            raise
        except Exception as exc:
            raise UploadRejected(f"Malformed upload form: {exc}") from exc
        try:
            fields = {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}
            upload_request = validate_form(fields)
            record = None
            if settings.upload_auth:
                record = await run_in_threadpool(
                    auth.require, header, "upload", upload_request.project
                )
            content = form.get("content")
            if not isinstance(content, UploadFile) or content.filename is None:
                raise UploadRejected("Upload payload does not have a file.")
            dist = validate_filename(upload_request, content.filename)
            claims = record.claims if record is not None and record.publisher else None
            await run_in_threadpool(publisher.publish, upload_request, dist, content.file, claims)
        finally:
            await form.close()
        return PlainTextResponse("")

    direct = DirectUploader(
        store, indexer, settings.max_direct_upload_size, settings.direct_hash_seconds
    )

    def _uploader(header: str | None, filename: str) -> None:
        try:
            project = parse_filename(filename).project
        except InvalidDistribution as exc:
            raise UploadRejected(str(exc)) from exc
        if settings.upload_auth:
            auth.require(header, "upload", project)
        page, _ = indexer.read_page(canonicalize_name(project))
        refusal = page.upload_refusal() if page else None
        if refusal:
            raise UploadRejected(refusal)

    @api.post("/api/uploads")
    async def plan_upload(
        body: UploadPlan, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """Presigned, create-only requests to upload one file straight to storage."""
        await run_in_threadpool(_uploader, authorization, body.filename)
        declared = Declared(
            body.filename, body.size, body.sha256, body.part_size, tuple(body.part_sha256)
        )
        plan = await run_in_threadpool(direct.plan, declared, body.resume_upload_id, body.marker)
        return JSONResponse(plan)

    @api.post("/api/uploads/complete")
    async def complete_upload(
        body: UploadComplete, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """Check what landed (size, SHA-256, metadata) and index it, or delete it."""
        await run_in_threadpool(_uploader, authorization, body.filename)
        declared = Declared(body.filename, body.size, body.sha256)
        parts = (
            [Part(p.number, p.etag, sha256=p.sha256) for p in body.parts]
            if body.parts is not None
            else None
        )
        result = await run_in_threadpool(
            direct.complete, declared, body.marker, body.upload_id, parts
        )
        return JSONResponse(result)

    add_routes(
        api,
        TokenExchange(publishers or PublisherRepository(store), tokens, settings.oidc_audience),
    )

    for path in UPLOAD_PATHS:
        api.add_api_route(path, upload, methods=["POST"], include_in_schema=path == "/legacy/")

    def _admin(header: str | None, project: str) -> None:
        if settings.upload_auth:
            auth.require(header, "admin", project)

    def _yank(project: str, body: YankRequest, reason: str | None) -> list[str]:
        if (body.filename is None) == (body.version is None):
            raise UploadRejected("Give exactly one of 'filename' or 'version'.")

        def change(entry: FileEntry) -> FileEntry | None:
            matches = entry.filename == body.filename or (
                body.version is not None and _same_version(entry.version, body.version)
            )
            if not matches:
                return None
            return FileEntry(**{**entry.__dict__, "yanked": reason})

        return indexer.update_files(canonicalize_name(project), change)

    @api.post("/api/projects/{project}/yank")
    async def yank(
        project: str,
        body: YankRequest,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Yank a file or a whole release (PEP 592): pip and uv skip it unless pinned."""
        await run_in_threadpool(_admin, authorization, project)
        changed = await run_in_threadpool(_yank, project, body, body.reason)
        return _changed(changed, "yanked", project, body)

    @api.post("/api/projects/{project}/unyank")
    async def unyank(
        project: str,
        body: YankRequest,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Undo a yank."""
        await run_in_threadpool(_admin, authorization, project)
        changed = await run_in_threadpool(_yank, project, body, None)
        return _changed(changed, "unyanked", project, body)

    @api.post("/api/projects/{project}/status")
    async def set_status(
        project: str,
        body: StatusRequest,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Set the project's status (PEP 792); archived and quarantined refuse uploads, and a
        quarantined project lists no files."""
        await run_in_threadpool(_admin, authorization, project)
        try:
            page = await run_in_threadpool(
                indexer.set_status, canonicalize_name(project), body.status, body.reason
            )
        except ValueError as exc:
            raise UploadRejected(str(exc)) from None
        if page is None:
            return JSONResponse({"detail": f"No project {project!r}."}, 404)
        log.info("project %s is now %s", page.name, page.status)
        return JSONResponse({"status": [f"{page.name} {page.status}"]})

    @api.delete("/api/projects/{project}/files/{filename}")
    async def delete_file(
        project: str,
        filename: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Delete one file. The only way an API caller can remove a published file."""
        await run_in_threadpool(_admin, authorization, project)
        page, _ = await run_in_threadpool(indexer.read_page, canonicalize_name(project))
        entry = page.find(filename) if page else None
        if entry is None:
            return JSONResponse({"detail": f"No file {filename!r} in {project!r}."}, 404)
        await run_in_threadpool(store.delete, entry.key)
        await run_in_threadpool(indexer.apply, [Gone(entry.key)])
        log.info("deleted %s", entry.key)
        return JSONResponse({"deleted": [filename]})

    @api.get("/integrity/{project}/{version}/{filename}/provenance")
    async def file_provenance(
        project: str,
        version: str,
        filename: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """The file's PEP 740 provenance: its attestations and the trusted publisher."""
        name = canonicalize_name(project)
        if settings.private:
            await run_in_threadpool(auth.require, authorization, "read", name, tokens_only=True)
        page, _ = await run_in_threadpool(indexer.read_page, name)
        entry = page.find(filename) if page else None
        if entry is None or entry.provenance is None or not _same_version(entry.version, version):
            return JSONResponse({"detail": "No provenance for this file."}, 404)
        try:
            _, body = await run_in_threadpool(store.get, provenance_key(name, filename))
        except NotFound:
            return JSONResponse({"detail": "No provenance for this file."}, 404)
        return Response(body, media_type=PROVENANCE_TYPE)

    return ReadRoutes(store, auth, settings, api)


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


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _changed(changed: list[str], verb: str, project: str, body: YankRequest) -> Response:
    if not changed:
        what = body.filename or f"version {body.version}"
        return JSONResponse(
            {"detail": f"Nothing to change: no {what} in {project!r}, or already {verb}."}, 404
        )
    return JSONResponse({verb: changed})
