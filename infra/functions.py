"""The Lambda functions' common shape: runtime, architecture, code, logs, tracing."""

from __future__ import annotations

from aws_cdk import AssetHashType, BundlingOptions, Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import ROOT
from infra.bundling import LocalBundling, source_hash
from infra.config import Config
from skypi.core.constants import TRACING_VARIABLE

RUNTIME = lambda_.Runtime.PYTHON_3_14
PYTHON_VERSION = "3.14"


def function_code(config: Config) -> lambda_.Code:
    """The bundle both functions share (one asset): dependencies and the skypi package."""
    if not config.bundle:  # tests: the package alone, no PyPI needed
        return lambda_.Code.from_asset(
            str(ROOT / "functions"), exclude=["**/__pycache__", "**/*.pyc"]
        )
    return lambda_.Code.from_asset(
        str(ROOT / "functions"),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(config.architecture, PYTHON_VERSION, config.trace_calls),
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            command=["false"],  # never used: the local bundler always succeeds or raises
            local=LocalBundling(config.architecture, PYTHON_VERSION, config.trace_calls),
        ),
    )


def skypi_function(
    scope: Construct,
    construct_id: str,
    *,
    config: Config,
    code: lambda_.Code,
    handler: str,
    description: str,
    timeout: Duration,
    environment: dict[str, str],
    memory_size: int = 1024,
    reserved_concurrent_executions: int | None = None,
) -> lambda_.Function:
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays(_retention(config.log_retention_days)),
    )
    return lambda_.Function(
        scope,
        construct_id,
        runtime=RUNTIME,
        architecture=(
            lambda_.Architecture.ARM_64
            if config.architecture == "arm64"
            else lambda_.Architecture.X86_64
        ),
        code=code,
        handler=handler,
        description=description,
        memory_size=memory_size,
        reserved_concurrent_executions=reserved_concurrent_executions,
        timeout=timeout,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        environment={
            "POWERTOOLS_METRICS_NAMESPACE": "skypi",
            **({TRACING_VARIABLE: "true"} if config.trace_calls else {}),
            **environment,
        },
    )


def _retention(days: int) -> str:
    """The nearest CloudWatch retention at or above ``days`` (its allowed values are fixed)."""
    allowed = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 3653]
    chosen = next((d for d in allowed if d >= days), allowed[-1])
    return {
        1: "ONE_DAY",
        3: "THREE_DAYS",
        5: "FIVE_DAYS",
        7: "ONE_WEEK",
        14: "TWO_WEEKS",
        30: "ONE_MONTH",
        60: "TWO_MONTHS",
        90: "THREE_MONTHS",
        120: "FOUR_MONTHS",
        150: "FIVE_MONTHS",
        180: "SIX_MONTHS",
        365: "ONE_YEAR",
        400: "THIRTEEN_MONTHS",
        545: "EIGHTEEN_MONTHS",
        731: "TWO_YEARS",
        1096: "THREE_YEARS",
        1827: "FIVE_YEARS",
        3653: "TEN_YEARS",
    }[chosen]
