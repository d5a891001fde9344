"""The indexer Lambda: S3 event notifications, batched by SQS, applied to the pages.

Each project named in a batch is indexed once, whatever the number of its records, and the root
listing and landing page once for the whole batch; if indexing a project fails, only the messages
that touched it are reported in ``batchItemFailures`` and come back later (the queue's redrive
policy sends repeat failures to the dead-letter queue).

Powertools' batch utility hands records over one by one, which would index a project once per
record; this handler groups first and reports partial failures in the same response shape.
It must stay light to import: no FastAPI here, no X-Ray SDK unless tracing is on, and the
indexer with its S3 client and metadata readers is loaded when the first batch arrives.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from skypi import tracing
from skypi.core.constants import INDEX_URL_VARIABLE
from skypi.core.errors import InvalidDistribution
from skypi.indexer.changes import Change, project_of_key
from skypi.indexer.events import MalformedMessage, decode_notification

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from skypi.indexer.service import Indexer

logger = Logger(service="skypi-indexer")
tracing.route_logs(logger)
metrics = Metrics(namespace="skypi", service="indexer")

_indexer: Indexer | None = None
HASH_MARGIN_SECONDS = 15  # left of an invocation after hashing: pages, metrics, the answer


def _default_indexer() -> Indexer:
    global _indexer
    if _indexer is None:  # once per container, on first use
        from skypi.indexer.service import Indexer
        from skypi.store.cdn import CloudFrontCdn
        from skypi.store.s3 import S3Store

        _indexer = Indexer(
            S3Store.from_environment(),
            cdn=CloudFrontCdn.from_environment(),
            workers=4,
            index_url=os.environ.get(INDEX_URL_VARIABLE) or None,
        )
    return _indexer


def _messages(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(message id, body) of each SQS record. Read straight from the event: Powertools'
    ``SQSEvent`` would load every event class it has (a fifth of this module's cold import)
    for two fields."""
    return [(str(r["messageId"]), str(r["body"])) for r in event.get("Records", [])]


def process(event: dict[str, Any], indexer: Indexer) -> dict[str, list[dict[str, str]]]:
    """Apply a batch; the answer names the messages to retry."""
    failed: set[str] = set()
    by_project: dict[str, list[tuple[str, Change]]] = defaultdict(list)
    for message_id, body in _messages(event):
        try:
            decoded = decode_notification(body)
        except MalformedMessage as exc:
            logger.error(
                "unreadable message, left for the dead-letter queue: %s",
                exc,
                extra={"message_id": message_id},
            )
            failed.add(message_id)
            continue
        for key, why in decoded.skipped:
            logger.info("skipped %s: %s", key, why, extra={"message_id": message_id})
        for change in decoded.changes:
            try:
                dist = project_of_key(change.key)
            except (InvalidDistribution, ValueError) as exc:
                logger.info("skipped %s: %s", change.key, exc)
                continue
            by_project[dist.project].append((message_id, change))

    started = time.perf_counter()
    try:  # one batch: each project's page once, the root listing and landing page once
        outcome = indexer.apply(
            (change for items in by_project.values() for _, change in items), isolate=True
        )
    except Exception:  # the root listing or landing page could not be written: retry all
        logger.exception("indexing the batch failed; its messages will be retried")
        failed.update(m for items in by_project.values() for m, _ in items)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}
    for project, error in outcome.failed.items():
        message_ids = sorted({m for m, _ in by_project.get(project, [])})
        logger.error(
            "indexing %s failed; its messages will be retried: %s",
            project,
            error,
            extra={"project": project, "message_ids": message_ids},
        )
        failed.update(message_ids)
    metrics.add_metric(
        "IndexLatency", MetricUnit.Milliseconds, (time.perf_counter() - started) * 1000
    )
    metrics.add_metric("FilesIndexed", MetricUnit.Count, len(outcome.added))
    metrics.add_metric("FilesRemoved", MetricUnit.Count, len(outcome.removed))
    metrics.add_metric("Conflicts", MetricUnit.Count, len(outcome.conflicts))
    metrics.add_metric("Refused", MetricUnit.Count, len(outcome.refused))
    metrics.add_metric("ProjectsWritten", MetricUnit.Count, len(outcome.written))
    # Conflicts and refusals were logged once, by the indexer, as they were found.
    logger.info(
        "indexed %d projects",
        len(by_project),
        extra={
            "projects": sorted(by_project),
            "added": outcome.added,
            "removed": outcome.removed,
            "failed": sorted(outcome.failed),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}


@logger.inject_lambda_context
@tracing.capture_lambda_handler("skypi-indexer")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, str]]]:
    indexer = _default_indexer()
    # Hashing a drop-in stops in time to refuse it clearly and write the pages of the rest.
    remaining = context.get_remaining_time_in_millis() / 1000
    indexer.hash_deadline = time.monotonic() + max(0.0, remaining - HASH_MARGIN_SECONDS)
    return process(event, indexer)


if tracing.initialized_ahead():
    _default_indexer()
