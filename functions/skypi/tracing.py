"""X-Ray tracing for the Lambda handlers, only where the stack turns it on
(``-c skypi:tracing=true`` sets ``SKYPI_TRACING``).

Powertools' Tracer loads the X-Ray SDK as it is created, and the SDK's recorder builds a
botocore client of its own: a tenth of a second or more on every cold start, paid even when
nobody reads the traces. Without it the handlers are the same functions, untraced.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

ENVIRONMENT_VARIABLE = "SKYPI_TRACING"
F = TypeVar("F", bound=Callable[..., Any])


def enabled() -> bool:
    value = os.environ.get(ENVIRONMENT_VARIABLE, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def capture_lambda_handler(service: str) -> Callable[[F], F]:
    """Powertools' ``Tracer(service).capture_lambda_handler`` when tracing is on, else nothing."""

    def decorate(handler: F) -> F:
        if not enabled():
            return handler
        from aws_lambda_powertools import Tracer

        return cast(F, Tracer(service=service).capture_lambda_handler(handler))

    return decorate
