"""The HTTP status of each of the core's errors, with what its answer carries besides the
message: the one table, read by the API's answers and by the read path (which loads without
the web framework: ``skypi serve`` answers reads before the API is loaded)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

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
REALM_HEADER: Final = {"WWW-Authenticate": 'Basic realm="skypi"'}


def status_of(exc: SkypiError) -> int:
    """The HTTP status for ``exc``: its class's, or its nearest ancestor's in :data:`STATUS`."""
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def headers_for(status: int) -> dict[str, str]:
    """What an error answer of ``status`` carries besides its message: the realm of a 401
    (clients ask for credentials on it), the ``Retry-After`` of a 503."""
    if status == 401:
        return dict(REALM_HEADER)
    return {"Retry-After": "1"} if status == 503 else {}
