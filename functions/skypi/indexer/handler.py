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
from skypi.core.constants import INDEX_URL_VARIABLE, ROOT_REBUILD_MESSAGE
from skypi.indexer.changes import Change
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
        from skypi.store.rebuilds import SqsRootRebuilds, environment_delay
        from skypi.store.s3 import S3Store

        _indexer = Indexer(
            S3Store.from_environment(),
            cdn=CloudFrontCdn.from_environment(),
            workers=4,
            index_url=os.environ.get(INDEX_URL_VARIABLE) or None,
            rebuilds=SqsRootRebuilds.from_environment(),
            root_delay=environment_delay(),
        )
    return _indexer


def _messages(event: dict[str, Any]) -> list[tuple[str, str]]:
    """(message id, body) of each SQS record. Read straight from the event: Powertools'
    ``SQSEvent`` would load every event class it has (a fifth of this module's cold import)
    for two fields."""
    return [(str(r["messageId"]), str(r["body"])) for r in event.get("Records", [])]


def _decode(
    messages: list[tuple[str, str]], failed: set[str]
) -> tuple[dict[str, list[str]], list[Change]]:
    """The changes the S3 notifications name, and key -> the messages that named it; an
    unreadable message goes into ``failed``."""
    by_key: dict[str, list[str]] = defaultdict(list)
    changes: list[Change] = []
    for message_id, body in messages:
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
            by_key[change.key].append(message_id)
            changes.append(change)
    return by_key, changes


def process(event: dict[str, Any], indexer: Indexer) -> dict[str, list[dict[str, str]]]:
    """Apply a batch; the answer names the messages to retry."""
    failed: set[str] = set()
    messages = _messages(event)
    # the messages asking for a rebuild of the root listing, done after the batch's changes
    rebuilds = [m for m, body in messages if body == ROOT_REBUILD_MESSAGE]
    by_key, changes = _decode([(m, b) for m, b in messages if m not in rebuilds], failed)

    started = time.perf_counter()
    try:  # one batch: each project's page once, the root listing and landing page once
        outcome = indexer.apply(changes, isolate=True)
    except Exception:  # the root listing or landing page could not be written: retry all
        logger.exception("indexing the batch failed; its messages will be retried")
        failed.update([*(m for ids in by_key.values() for m in ids), *rebuilds])
        return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}
    if outcome.failed:
        message_ids = sorted({m for key in outcome.failed_keys for m in by_key[key]})
        logger.error(
            "indexing %s failed; its messages will be retried: %s",
            ", ".join(sorted(outcome.failed)),
            "; ".join(f"{p}: {e}" for p, e in sorted(outcome.failed.items())),
            extra={"projects": sorted(outcome.failed), "message_ids": message_ids},
        )
        failed.update(message_ids)
    if rebuilds:
        failed.update(_rebuild_root(indexer, rebuilds))
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
        len(outcome.projects),
        extra={
            "projects": sorted(outcome.projects),
            "added": outcome.added,
            "removed": outcome.removed,
            "failed": sorted(outcome.failed),
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed)]}


def _rebuild_root(indexer: Indexer, message_ids: list[str]) -> list[str]:
    """Merge the root listing's pending changes, after the batch's own (one rebuild for all
    such messages); the messages to retry if it failed."""
    try:
        listing = indexer.rebuild_root()
    except Exception:
        logger.exception("rebuilding the root listing failed; it will be retried")
        return message_ids
    if listing is not None:
        logger.info("rebuilt the root listing", extra={"projects": len(listing.projects)})
    return []


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
