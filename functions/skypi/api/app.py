"""The application: upload API, admin API, health, and the read path, over one store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

import skypi
from skypi.api.admin import add_routes as admin_routes
from skypi.api.auth import Authenticator
from skypi.api.direct import DirectUploader
from skypi.api.errors import error_response, validation_details
from skypi.api.namespaces import add_routes as namespace_routes
from skypi.api.oidc import TokenExchange, add_routes
from skypi.api.provenance import add_routes as provenance_routes
from skypi.api.publish import Uploader
from skypi.api.reads import read_routes
from skypi.api.settings import Settings
from skypi.api.uploads import Uploads
from skypi.api.uploads import add_routes as upload_routes
from skypi.core.errors import (
    SkypiError,
)
from skypi.core.tokens import Scope
from skypi.indexer.admin import Admin
from skypi.indexer.namespaces import NamespaceAdmin
from skypi.indexer.service import Indexer
from skypi.store.base import Store
from skypi.store.publishers import PublisherRepository, PublisherStore
from skypi.store.tokens import TokenRepository, TokenStore

if TYPE_CHECKING:  # botocore is not needed to serve a folder (`skypi serve`, no aws extra)
    from skypi.indexer.deferred import RootRebuilds
    from skypi.indexer.views import Views  # views are served by `skypi serve` only
    from skypi.store.cdn import Cdn
    from skypi.store.kvs import EdgeQuarantine

log = logging.getLogger("skypi.api")


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


def _bare_app(settings: Settings, auth: Authenticator) -> FastAPI:
    """The app with its description, its error answers and its health check, and no route
    of the index yet."""
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

    return api


def create_app(
    store: Store,
    settings: Settings | None = None,
    tokens: TokenStore | None = None,
    cdn: Cdn | None = None,
    publishers: PublisherStore | None = None,
    edge: EdgeQuarantine | None = None,
    indexer: Indexer | None = None,
    views: Views | None = None,
    rebuilds: RootRebuilds | None = None,
) -> Any:
    """The whole HTTP surface as one ASGI app; tokens and trusted publishers live in ``store``
    unless given; ``cdn`` is told about deleted files (none locally: nothing caches them there);
    ``edge`` keeps the CloudFront edge's quarantine records (none locally: the read routes
    look at each project's status); ``indexer``: one shared with another writer of this process
    (``skypi serve``'s folder watcher), so that a page is never followed twice at once;
    ``views`` serves ``/view/<name>/...`` (``skypi serve``); ``rebuilds``: where a rebuild
    of the root listing is asked for (AWS: the indexer's queue; ``settings.root_delay``)."""
    settings = settings or Settings()
    indexer = indexer or Indexer(
        store,
        cdn=cdn,
        index_url=settings.index_url if settings.address_in_pages else None,
        rebuilds=rebuilds,
        root_delay=settings.root_delay,
    )
    tokens = tokens or TokenRepository(store)
    auth = Authenticator(tokens)
    api = create_api(store, settings, indexer, tokens, auth, publishers=publishers, edge=edge)
    return read_routes(store, settings, indexer, auth, api, views)


def create_api(
    store: Store,
    settings: Settings,
    indexer: Indexer,
    tokens: TokenStore,
    auth: Authenticator,
    publishers: PublisherStore | None = None,
    edge: EdgeQuarantine | None = None,
) -> FastAPI:
    """Every route but the read path's: uploads, admin, namespaces, provenance, tokens for
    trusted publishers, the health check and the API's description."""
    api = _bare_app(settings, auth)
    uploader = Uploader(store, indexer, settings.max_upload_size)
    direct = DirectUploader(
        store, indexer, settings.max_direct_upload_size, settings.direct_hash_seconds
    )
    upload_routes(api, Uploads(settings, auth, uploader, direct))
    add_routes(
        api,
        TokenExchange(publishers or PublisherRepository(store), tokens, settings.oidc_audience),
    )

    def _admin(header: str | None, project: str) -> None:
        if settings.upload_auth:
            auth.require(header, Scope.ADMIN, project)

    admin_routes(api, Admin(indexer, edge), _admin)

    def _index_admin(header: str | None) -> None:
        if settings.upload_auth:
            auth.require(header, Scope.ADMIN, None)

    namespace_routes(api, NamespaceAdmin(indexer), _index_admin)
    provenance_routes(api, store, indexer, auth, settings.private)
    return api
