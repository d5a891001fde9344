"""How the Lambda handlers start: X-Ray tracing only where the stack turns it on
(``-c skypi:traceCalls=true`` sets ``SKYPI_TRACING``), eager set-up only where Lambda
initializes ahead of requests, and every ``skypi.*`` log line written through the handler's
Powertools Logger on Lambda.

Powertools' Tracer loads the X-Ray SDK as it is created, and the SDK's recorder builds a
botocore client of its own: a tenth of a second or more on every cold start, paid even when
nobody reads the traces. Without it the handlers are the same functions, untraced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from skypi.core.constants import TRACING_VARIABLE

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

# Set by the Lambda runtime in every function's environment (a reserved name):
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
LAMBDA_VARIABLE = "AWS_LAMBDA_FUNCTION_NAME"

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


def on_lambda() -> bool:
    return bool(os.environ.get(LAMBDA_VARIABLE))


def route_logs(logger: Logger) -> None:
    """On Lambda, every ``skypi.*`` logger writes through ``logger``: one Powertools JSON line
    per record, with the invocation's request id (and correlation id, where the handler sets
    one) and the logger's name, at the Logger's level (``POWERTOOLS_LOG_LEVEL``).

    Powertools' own way (``copy_config_to_registered_loggers``, its Logger docs, "Reusing
    Logger across your code") gives the ``skypi`` logger the Logger's handler and stops it
    propagating, so the runtime's plain-text root handler does not write each line twice; the
    modules' loggers, created later, reach it through the parent. Off Lambda (``skypi dev``,
    tests) the host's logging set-up is left as it is.
    """
    if not on_lambda():
        return
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    logging.getLogger("skypi")  # registered now: the copy only finds loggers that exist
    copy_config_to_registered_loggers(source_logger=logger, include={"skypi"})
