"""How the core's errors are answered over HTTP: one status per error class, one response shape.

The core raises errors named by meaning (:mod:`skypi.core.errors`); this table is the only place
that turns them into HTTP statuses. The upload endpoints answer in plain text with the message as
the reason phrase too (twine shows only the status line, uv and pip the body); the JSON API under
``/api/`` answers ``{"detail": message}``, the shape FastAPI gives its own errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from skypi.core.errors import (
    AuthFailure,
    AuthRequired,
    Busy,
    Conflict,
    CorruptDocument,
    Discontinued,
    DoesNotExist,
    EdgeUnavailable,
    InvalidDistribution,
    InvalidRequest,
    LengthRequired,
    NotSupported,
    ReadOnly,
    RequestTooLarge,
    Reserved,
    SkypiError,
    UploadRejected,
)
from skypi.core.reason import REASON_HEADER, reason_phrase

STATUS: Final[Mapping[type[SkypiError], int]] = MappingProxyType(
    {
        SkypiError: 400,
        InvalidDistribution: 400,
        UploadRejected: 400,  # Warehouse answers 400 to every upload its rules refuse
        InvalidRequest: 400,
        AuthRequired: 401,  # with the realm that makes a client ask for credentials
        AuthFailure: 403,
        ReadOnly: 403,
        DoesNotExist: 404,
        Conflict: 409,
        Reserved: 409,  # PEP 752: a name in a namespace, without a grant
        Discontinued: 410,  # as Warehouse does for pre-registration and doc uploads
        LengthRequired: 411,
        RequestTooLarge: 413,
        CorruptDocument: 500,  # the index's own page, damaged: `skypi reindex` writes it again
        NotSupported: 501,
        Busy: 503,
        EdgeUnavailable: 503,
    }
)
JSON_PREFIX: Final = "/api/"
REALM_HEADER: Final = {"WWW-Authenticate": 'Basic realm="skypi"'}


class ErrorDetail(BaseModel):
    """Why the request was refused, and what to do about it."""

    detail: str


def status_of(exc: SkypiError) -> int:
    """The HTTP status for ``exc``: its class's, or its nearest ancestor's in :data:`STATUS`."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def headers_for(status: int) -> dict[str, str]:
    """What an error answer of ``status`` carries besides its message: the realm of a 401
    (clients ask for credentials on it), the ``Retry-After`` of a 503."""
    if status == 401:
        return dict(REALM_HEADER)
    return {"Retry-After": "1"} if status == 503 else {}


def error_response(exc: SkypiError, path: str) -> Response:
    """The message in the body and as the reason phrase; JSON under ``/api/``."""
    message = str(exc)
    status = status_of(exc)
    headers = headers_for(status) | {REASON_HEADER: reason_phrase(message)}
    if path.startswith(JSON_PREFIX):
        return JSONResponse({"detail": message}, status, headers=headers)
    return PlainTextResponse(message + "\n", status, headers=headers)


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """What FastAPI found wrong with a body (where, what, which rule), without echoing the
    input: a value such as ``1e400`` (infinity) or ``NaN`` has no JSON form to echo it in.

    >>> validation_details(RequestValidationError([{"loc": ("body", "size"), "msg": "bad",
    ...     "type": "int_type", "input": float("inf")}]))
    [{'loc': ['body', 'size'], 'msg': 'bad', 'type': 'int_type'}]
    """
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": e.get("type"),
        }
        for e in exc.errors()
    ]


def documented(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for a route that answers these error statuses with a detail."""
    return {status: {"model": ErrorDetail} for status in statuses}
