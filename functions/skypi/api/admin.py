"""The admin API: yank, unyank, delete a file, set a project's status; each needs an admin token.

Thin routes over :class:`skypi.indexer.admin.Admin`; what they answer is in ``/api/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Header, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.types import Message

from skypi.api.errors import documented
from skypi.core.errors import RequestTooLarge
from skypi.core.pages import MAX_STATUS_REASON
from skypi.indexer.admin import Admin

Authorize = Callable[[str | None, str], None]  # (Authorization header, project): raises if not
_FIELD = 255  # longer than any filename or version a page can hold
# Room for every field at its longest, each character JSON-escaped (\uXXXX: 6 bytes).
MAX_BODY: Final = 64 * 1024


class SmallBodyRoute(APIRoute):
    """A route whose body is read only up to :data:`MAX_BODY`: FastAPI reads a body whole,
    before the route can check who is asking, so a bigger one is refused as it arrives."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise RequestTooLarge(
                        f"An admin request's body holds at most {MAX_BODY:,} bytes of JSON."
                    )
            pending: list[Message] = [
                {"type": "http.request", "body": bytes(body), "more_body": False}
            ]

            async def replay() -> Message:  # the body once, then what the client does next
                return pending.pop() if pending else await request.receive()

            return await handler(Request(request.scope, replay))

        return bounded


class FilesRequest(BaseModel):
    """Which files: one ``filename``, or every file of ``version``."""

    filename: str | None = Field(default=None, max_length=_FIELD)
    version: str | None = Field(default=None, max_length=_FIELD)


class YankRequest(FilesRequest):
    """Which files to yank, and why (pip and uv show the reason)."""

    reason: str = Field(default="", max_length=MAX_STATUS_REASON)


class StatusRequest(BaseModel):
    """PEP 792: active, archived, deprecated or quarantined, with an optional reason."""

    status: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=MAX_STATUS_REASON)


class Yanked(BaseModel):
    yanked: list[str] = Field(description="the files yanked")


class Unyanked(BaseModel):
    unyanked: list[str] = Field(description="the files unyanked")


class Deleted(BaseModel):
    deleted: list[str] = Field(description="the file deleted")


class StatusSet(BaseModel):
    status: list[str] = Field(description="'<project> <status>', as set")


_REFUSALS = documented(400, 401, 403, 404, 413)


def add_routes(api: FastAPI, admin: Admin, authorize: Authorize) -> None:
    """Add the admin routes to ``api``; ``authorize`` refuses a caller who may not administer
    the project (FastAPI runs these sync routes in its thread pool)."""
    router = APIRouter(route_class=SmallBodyRoute)

    @router.post("/api/projects/{project}/yank", responses=_REFUSALS)
    def yank(
        project: str, body: YankRequest, authorization: Annotated[str | None, Header()] = None
    ) -> Yanked:
        """Yank a file or a whole release (PEP 592): pip and uv skip it unless pinned."""
        authorize(authorization, project)
        return Yanked(
            yanked=admin.yank(
                project, filename=body.filename, version=body.version, reason=body.reason
            )
        )

    @router.post("/api/projects/{project}/unyank", responses=_REFUSALS)
    def unyank(
        project: str, body: FilesRequest, authorization: Annotated[str | None, Header()] = None
    ) -> Unyanked:
        """Undo a yank."""
        authorize(authorization, project)
        return Unyanked(
            unyanked=admin.unyank(project, filename=body.filename, version=body.version)
        )

    @router.post("/api/projects/{project}/status", responses=_REFUSALS)
    def set_status(
        project: str, body: StatusRequest, authorization: Annotated[str | None, Header()] = None
    ) -> StatusSet:
        """Set the project's status (PEP 792); archived and quarantined refuse uploads, and a
        quarantined project lists no files."""
        authorize(authorization, project)
        done = admin.set_status(project, body.status, body.reason)
        return StatusSet(status=[f"{done.project} {done.status}"])

    # ``:path``: a name with a slash in it (or %2F) is answered "no such file", not a bare 404
    @router.delete("/api/projects/{project}/files/{filename:path}", responses=_REFUSALS)
    def delete_file(
        project: str, filename: str, authorization: Annotated[str | None, Header()] = None
    ) -> Deleted:
        """Delete one file. The only way an API caller can remove a published file."""
        authorize(authorization, project)
        return Deleted(deleted=[admin.delete(project, filename).filename])

    api.include_router(router)
