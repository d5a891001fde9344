"""How the core's errors are answered over HTTP: one status per error class, one response shape.

The core raises errors named by meaning (:mod:`skypi.core.errors`); the table in
:mod:`skypi.api.statuses` is the only place that turns them into HTTP statuses. The upload
endpoints answer in plain text with the message as the reason phrase too (twine shows only the
status line, uv and pip the body); the JSON API under ``/api/`` answers ``{"detail": message}``,
the shape FastAPI gives its own errors.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel

from skypi.api.statuses import REALM_HEADER, STATUS, headers_for, status_of
from skypi.core.errors import SkypiError
from skypi.core.reason import REASON_HEADER, reason_phrase

__all__ = [
    "REALM_HEADER",
    "STATUS",
    "ErrorDetail",
    "documented",
    "error_response",
    "headers_for",
    "status_of",
    "validation_details",
]

JSON_PREFIX: Final = "/api/"


class ErrorDetail(BaseModel):
    """Why the request was refused, and what to do about it."""

    detail: str


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
