"""A file's PEP 740 provenance, read like the file it is about: the attestations its upload
carried and the trusted publisher that made them, at the URL its entry on the page names."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header
from fastapi.responses import JSONResponse, Response
from packaging.utils import canonicalize_name
from starlette.concurrency import run_in_threadpool

from skypi.api.auth import Authenticator
from skypi.core.attestations import PROVENANCE_TYPE
from skypi.core.filenames import VALID_PROJECT_NAME, same_version
from skypi.core.keys import provenance_key
from skypi.core.tokens import Scope
from skypi.indexer.service import Indexer
from skypi.store.base import NotFound, Store


def add_routes(
    api: FastAPI, store: Store, indexer: Indexer, auth: Authenticator, private: bool
) -> None:
    """Add the provenance route to ``api``; on a ``private`` index it needs a read token."""
    router = APIRouter()

    @router.get("/integrity/{project}/{version}/{filename}/provenance")
    async def file_provenance(
        project: str,
        version: str,
        filename: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> Response:
        """The file's PEP 740 provenance: its attestations and the trusted publisher."""
        name = canonicalize_name(project)
        if private:
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

    api.include_router(router)
