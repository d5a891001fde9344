"""The namespace admin API (PEP 752): list, add, grant, revoke, remove; each needs an admin
token for the whole index. Thin routes over :class:`skypi.indexer.namespaces.NamespaceAdmin`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header
from pydantic import BaseModel, Field

from skypi.api.admin import SmallBodyRoute
from skypi.api.errors import documented
from skypi.core.namespaces import MAX_NAME, MAX_OWNER, Namespace
from skypi.indexer.namespaces import NamespaceAdmin

AuthorizeIndex = Callable[[str | None], None]  # (Authorization header): raises if not an admin
_REFUSALS = documented(400, 401, 403, 404, 409, 413)


class NamespaceRequest(BaseModel):
    """A namespace to reserve: its name, its owner, who may publish under it."""

    name: str = Field(max_length=MAX_NAME)
    owner: str = Field(max_length=MAX_OWNER)
    grants: list[Annotated[str, Field(max_length=120)]] = Field(
        default_factory=list, max_length=100
    )
    open: bool = False


class GrantRequest(BaseModel):
    principal: str = Field(max_length=120)


class NamespaceRecord(BaseModel):
    name: str
    owner: str
    grants: list[str]
    open: bool
    predating: list[str] = Field(description="projects listed before it was reserved")


class NamespaceList(BaseModel):
    namespaces: list[NamespaceRecord]


def _record(ns: Namespace) -> NamespaceRecord:
    data: dict[str, Any] = ns.to_json()
    return NamespaceRecord(**data)


def add_routes(api: FastAPI, admin: NamespaceAdmin, authorize: AuthorizeIndex) -> None:
    """Add the namespace routes to ``api`` (sync routes: FastAPI runs them in its threads)."""
    router = APIRouter(route_class=SmallBodyRoute, prefix="/api/namespaces")

    @router.get("", responses=_REFUSALS)
    def list_namespaces(authorization: Annotated[str | None, Header()] = None) -> NamespaceList:
        """Every namespace, with its owner, grants and the projects that predate it."""
        authorize(authorization)
        return NamespaceList(namespaces=[_record(ns) for ns in admin.list()])

    @router.post("", responses=_REFUSALS)
    def add(
        body: NamespaceRequest, authorization: Annotated[str | None, Header()] = None
    ) -> NamespaceRecord:
        """Reserve a namespace; the projects it covers that are listed already predate it."""
        authorize(authorization)
        return _record(admin.add(body.name, owner=body.owner, grants=body.grants, open=body.open))

    @router.post("/{name}/grants", responses=_REFUSALS)
    def grant(
        name: str, body: GrantRequest, authorization: Annotated[str | None, Header()] = None
    ) -> NamespaceRecord:
        """Let a principal (token:ID, user:NAME, publisher:ID) publish under the namespace."""
        authorize(authorization)
        return _record(admin.grant(name, body.principal))

    @router.delete("/{name}/grants/{principal}", responses=_REFUSALS)
    def revoke(
        name: str, principal: str, authorization: Annotated[str | None, Header()] = None
    ) -> NamespaceRecord:
        """Take a principal's grant away."""
        authorize(authorization)
        return _record(admin.revoke(name, principal))

    @router.delete("/{name}", responses=_REFUSALS)
    def remove(name: str, authorization: Annotated[str | None, Header()] = None) -> NamespaceRecord:
        """Remove the namespace: its names are free again, and its projects' pages say so."""
        authorize(authorization)
        return _record(admin.remove(name))

    api.include_router(router)
