"""The invalidator Lambda: sends again the CloudFront invalidations that were refused.

The API and the indexer invalidate at once and put a batch CloudFront refused on the
invalidation queue (:mod:`skypi.store.cdn`). Each message is one batch within CloudFront's
limits; one that is refused again is reported in ``batchItemFailures`` and comes back after the
queue's visibility timeout, and after the queue's receive limit it goes to the dead-letter
queue, whose alarm says so (docs/deploy.md). A message that is no batch goes there too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from skypi import tracing
from skypi.core.invalidation import Batch
from skypi.store.cdn import REFUSALS, CloudFrontCdn, error_code

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="skypi-invalidator")
tracing.route_logs(logger)
metrics = Metrics(namespace="skypi", service="invalidator")

_cdn: CloudFrontCdn | None = None
# CloudFront's answers that hold for every batch until later: the others are not tried now.
BUSY = frozenset({"TooManyInvalidationsInProgress", "Throttling"})


def _default_cdn() -> CloudFrontCdn:
    global _cdn
    if _cdn is None:
        cdn = CloudFrontCdn.from_environment()
        if cdn is None:
            raise RuntimeError("SKYPI_DISTRIBUTION_ID is not set")
        _cdn = cdn
    return _cdn


def process(event: dict[str, Any], cdn: CloudFrontCdn) -> dict[str, list[dict[str, str]]]:
    """Send each message's batch; the answer names the messages to retry."""
    failed: list[str] = []
    sent = 0
    refused_because = ""  # once CloudFront is full (or throttles), the rest waits too
    for record in event.get("Records", []):
        message_id = str(record["messageId"])
        try:
            batch = Batch.from_message(str(record["body"]))
        except ValueError as exc:
            logger.error("unreadable message, left for the dead-letter queue: %s", exc)
            failed.append(message_id)
            continue
        if refused_because:
            failed.append(message_id)
            continue
        try:
            cdn.send(batch)
            sent += 1
        except REFUSALS as exc:
            code = error_code(exc) or type(exc).__name__
            if code in BUSY:
                refused_because = code
            logger.warning(
                "the CDN refused an invalidation again (%s); it will be retried",
                code,
                extra={"paths": len(batch.paths), "message_id": message_id},
            )
            failed.append(message_id)
    metrics.add_metric("InvalidationsSent", MetricUnit.Count, sent)
    metrics.add_metric("InvalidationsRefused", MetricUnit.Count, len(failed))
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


@logger.inject_lambda_context
@tracing.capture_lambda_handler("skypi-invalidator")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    return process(event, _default_cdn())
