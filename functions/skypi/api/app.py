"""The application: upload API, admin API, health, and the read path, over one store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from packaging.utils import canonicalize_name
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

import skypi
from skypi.api.admin import add_routes as admin_routes
from skypi.api.auth import Authenticator
from skypi.api.direct import Declared, DirectUploader
from skypi.api.errors import error_response, validation_details
from skypi.api.namespaces import add_routes as namespace_routes
from skypi.api.oidc import TokenExchange, add_routes
from skypi.api.publish import Uploader
from skypi.api.reads import ReadRoutes, withheld_projects
from skypi.api.settings import Settings
from skypi.api.views import ViewRoutes
from skypi.core.attestations import PROVENANCE_TYPE
from skypi.core.errors import (
    AuthFailure,
    InvalidDistribution,
    LengthRequired,
    RequestTooLarge,
    SkypiError,
    UploadRejected,
)
from skypi.core.filenames import VALID_PROJECT_NAME, parse_filename, same_version
from skypi.core.keys import SHA256_HEX, provenance_key
from skypi.core.tokens import Scope, TokenRecord
from skypi.core.upload import too_large, validate_filename, validate_form
from skypi.indexer.admin import Admin
from skypi.indexer.namespaces import NamespaceAdmin
from skypi.indexer.service import Indexer
from skypi.indexer.views import Views
from skypi.store.base import NotFound, Part, Store
from skypi.store.publishers import PublisherRepository, PublisherStore
from skypi.store.tokens import TokenRepository, TokenStore

if TYPE_CHECKING:  # botocore is not needed to serve a folder (`skypi serve`, no aws extra)
    from skypi.store.cdn import Cdn
    from skypi.store.kvs import EdgeQuarantine

log = logging.getLogger("skypi.api")
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


DOCS_PATH = "/api/docs"
OPENAPI_PATH = "/api/openapi.json"


def _private_docs(api: FastAPI, auth: Authenticator) -> None:
    """On a private index the API's description is read like the index: with a read token
    (it names every route and what each answers, which is for those who may read)."""

    @api.get(OPENAPI_PATH, include_in_schema=False)
    async def openapi(authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        await run_in_threadpool(auth.require, authorization, Scope.READ, None)
        return JSONResponse(api.openapi())

    @api.get(DOCS_PATH, include_in_schema=False)
    async def docs(authorization: Annotated[str | None, Header()] = None) -> HTMLResponse:
        await run_in_threadpool(auth.require, authorization, Scope.READ, None)
        return get_swagger_ui_html(openapi_url=OPENAPI_PATH, title=f"{api.title} API")


def create_app(
    store: Store,
    settings: Settings | None = None,
    tokens: TokenStore | None = None,
    cdn: Cdn | None = None,
    publishers: PublisherStore | None = None,
    edge: EdgeQuarantine | None = None,
    indexer: Indexer | None = None,
    views: Views | None = None,
) -> Any:
    """The whole HTTP surface as one ASGI app; tokens and trusted publishers live in ``store``
    unless given; ``cdn`` is told about deleted files (none locally: nothing caches them there);
    ``edge`` keeps the CloudFront edge's quarantine records (none locally: the read routes
    look at each project's status); ``indexer``: one shared with another writer of this process
    (``skypi serve``'s folder watcher), so that a page is never followed twice at once;
    ``views`` serves ``/view/<name>/...`` (``skypi serve``)."""
    settings = settings or Settings()
    indexer = indexer or Indexer(
        store, cdn=cdn, index_url=settings.index_url if settings.address_in_pages else None
    )
    tokens = tokens or TokenRepository(store)
    auth = Authenticator(tokens)
    uploader = Uploader(store, indexer, settings.max_upload_size)
    api = FastAPI(
        title="skypi",
        version=skypi.__version__,
        docs_url=None if settings.private else DOCS_PATH,
        openapi_url=None if settings.private else OPENAPI_PATH,
        redoc_url=None,
    )
    if settings.private:
        _private_docs(api, auth)

    @api.exception_handler(SkypiError)
    async def _skypi_error(request: Request, exc: SkypiError) -> Response:
        return error_response(exc, request.url.path)

    @api.exception_handler(RequestValidationError)
    async def _invalid_body(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": validation_details(exc)}, 422)

    @api.get(settings.health_path, include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": skypi.__version__}

    def namespace_check(caller: TokenRecord | None, project: str) -> None:
        """PEP 752: 409 when ``project`` is in a namespace ``caller`` holds no grant for (a
        caller without a token, on an index that takes uploads without one, holds none)."""
        indexer.namespaces.all().check(project, caller.principal if caller else "")

    async def upload(request: Request) -> Response:
        header = request.headers.get("authorization")
        if settings.upload_auth:  # all that the headers can tell, checked before the body
            caller = await run_in_threadpool(auth.identify, header)
            if not caller.may(Scope.UPLOAD):
                raise AuthFailure(
                    "The given token isn't allowed to upload: create an upload token with "
                    "'skypi token create --scope upload'.",
                )
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
        request = Request(
            request.scope, _bounded(request.receive, settings.max_upload_size, refusal)
        )
        try:
            form = await request.form(max_part_size=MAX_FIELD_BYTES)
        except SkypiError:
            raise
        except Exception as exc:
            raise UploadRejected(f"Malformed upload form: {exc}") from exc
        try:
            fields = {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}
            upload_request = validate_form(fields)
            record = None
            if settings.upload_auth:
                record = await run_in_threadpool(
                    auth.require, header, Scope.UPLOAD, upload_request.project
                )
            content = form.get("content")
            if not isinstance(content, UploadFile) or content.filename is None:
                raise UploadRejected("Upload payload does not have a file.")
            dist = validate_filename(upload_request, content.filename)
            await run_in_threadpool(namespace_check, record, upload_request.project)
            claims = record.claims if record is not None and record.publisher else None
            await run_in_threadpool(uploader.publish, upload_request, dist, content.file, claims)
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
        caller = auth.require(header, Scope.UPLOAD, project) if settings.upload_auth else None
        namespace_check(caller, project)
        page = indexer.pages.read(canonicalize_name(project)).page
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
        return JSONResponse(plan.wire())

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
        return JSONResponse(result.wire())

    add_routes(
        api,
        TokenExchange(publishers or PublisherRepository(store), tokens, settings.oidc_audience),
    )

    for path in UPLOAD_PATHS:
        api.add_api_route(path, upload, methods=["POST"], include_in_schema=path == "/legacy/")

    def _admin(header: str | None, project: str) -> None:
        if settings.upload_auth:
            auth.require(header, Scope.ADMIN, project)

    admin_routes(api, Admin(indexer, edge), _admin)

    def _index_admin(header: str | None) -> None:
        if settings.upload_auth:
            auth.require(header, Scope.ADMIN, None)

    namespace_routes(api, NamespaceAdmin(indexer), _index_admin)

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
            await run_in_threadpool(auth.require, authorization, Scope.READ, name, tokens_only=True)
        page = (
            (await run_in_threadpool(indexer.pages.read, name)).page
            if VALID_PROJECT_NAME.match(project)  # never a key such as "simple/foo\x00/"
            else None
        )
        entry = page.find(filename) if page else None
        if entry is None or entry.provenance is None or not same_version(entry.version, version):
            return JSONResponse({"detail": "No provenance for this file."}, 404)
        try:
            _, body = await run_in_threadpool(store.get, provenance_key(name, filename))
        except NotFound:
            return JSONResponse({"detail": "No provenance for this file."}, 404)
        return Response(body, media_type=PROVENANCE_TYPE)

    view_routes = ViewRoutes(views) if views is not None else None
    return ReadRoutes(store, auth, settings, api, withheld_projects(indexer), view_routes)


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
