"""The admin API: yank, unyank, delete a file, set a project's status; each needs an admin token.

Thin routes over :class:`skypi.indexer.admin.Admin`; what they answer is in ``/api/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, Header
from pydantic import BaseModel, Field

from skypi.api.errors import documented
from skypi.core.pages import MAX_STATUS_REASON
from skypi.indexer.admin import Admin

Authorize = Callable[[str | None, str], None]  # (Authorization header, project): raises if not
_FIELD = 255  # longer than any filename or version a page can hold


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


_REFUSALS = documented(400, 401, 403, 404)


def add_routes(api: FastAPI, admin: Admin, authorize: Authorize) -> None:
    """Add the admin routes to ``api``; ``authorize`` refuses a caller who may not administer
    the project (FastAPI runs these sync routes in its thread pool)."""

    @api.post("/api/projects/{project}/yank", responses=_REFUSALS)
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

    @api.post("/api/projects/{project}/unyank", responses=_REFUSALS)
    def unyank(
        project: str, body: FilesRequest, authorization: Annotated[str | None, Header()] = None
    ) -> Unyanked:
        """Undo a yank."""
        authorize(authorization, project)
        return Unyanked(
            unyanked=admin.unyank(project, filename=body.filename, version=body.version)
        )

    @api.post("/api/projects/{project}/status", responses=_REFUSALS)
    def set_status(
        project: str, body: StatusRequest, authorization: Annotated[str | None, Header()] = None
    ) -> StatusSet:
        """Set the project's status (PEP 792); archived and quarantined refuse uploads, and a
        quarantined project lists no files."""
        authorize(authorization, project)
        done = admin.set_status(project, body.status, body.reason)
        return StatusSet(status=[f"{done.project} {done.status}"])

    # ``:path``: a name with a slash in it (or %2F) is answered "no such file", not a bare 404
    @api.delete("/api/projects/{project}/files/{filename:path}", responses=_REFUSALS)
    def delete_file(
        project: str, filename: str, authorization: Annotated[str | None, Header()] = None
    ) -> Deleted:
        """Delete one file. The only way an API caller can remove a published file."""
        authorize(authorization, project)
        return Deleted(deleted=[admin.delete(project, filename).filename])
