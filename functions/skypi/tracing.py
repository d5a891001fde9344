"""How the Lambda handlers start: X-Ray tracing only where the stack turns it on
(``-c skypi:traceCalls=true`` sets ``SKYPI_TRACING``), and eager set-up only where Lambda
initializes ahead of requests.

Powertools' Tracer loads the X-Ray SDK as it is created, and the SDK's recorder builds a
botocore client of its own: a tenth of a second or more on every cold start, paid even when
nobody reads the traces. Without it the handlers are the same functions, untraced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from skypi.core.constants import TRACING_VARIABLE

F = TypeVar("F", bound=Callable[..., Any])


def enabled() -> bool:
    value = os.environ.get(TRACING_VARIABLE, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def initialized_ahead() -> bool:
    """Whether Lambda initializes this environment ahead of any request (provisioned
    concurrency, or a SnapStart snapshot): then the handlers build everything at import,
    since that time is never on a request's path (``AWS_LAMBDA_INITIALIZATION_TYPE``)."""
    kind = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    return kind in {"provisioned-concurrency", "snap-start"}


def capture_lambda_handler(service: str) -> Callable[[F], F]:
    """Powertools' ``Tracer(service).capture_lambda_handler`` when tracing is on, else nothing."""

    def decorate(handler: F) -> F:
        if not enabled():
            return handler
        from aws_lambda_powertools import Tracer

        return cast(F, Tracer(service=service).capture_lambda_handler(handler))

    return decorate
