"""The CDN in front of the bucket: tell it to forget files that were deleted or restored.

What to name and how many at once is :mod:`skypi.core.invalidation`'s rule (exact paths, in
batches within CloudFront's limits). This adapter sends each batch; one that CloudFront
refuses (``TooManyInvalidationsInProgress`` while earlier ones run, throttling, any error) is
put on a queue instead, with its CallerReference, and the invalidator function
(:mod:`skypi.indexer.invalidator`) sends it again until CloudFront takes it; a batch that
keeps failing ends in that queue's dead-letter queue, which raises an alarm (docs/deploy.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from skypi.core.invalidation import Batch, as_messages, invalidation_paths, plan
from skypi.store.aws import create_client

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("skypi.cdn")
DISTRIBUTION_VARIABLE = "SKYPI_DISTRIBUTION_ID"
QUEUE_VARIABLE = "SKYPI_INVALIDATION_QUEUE_URL"
REFUSALS = (BotoCoreError, ClientError)


class Cdn(Protocol):
    """Something that caches the store's objects and can be told to drop some."""

    def invalidate(self, keys: Iterable[str]) -> None: ...


class PendingInvalidations(Protocol):
    """Where a batch CloudFront refused waits to be sent again."""

    def put(self, batch: Batch) -> None: ...


class SqsPendingInvalidations:
    """The invalidation queue (SendMessage only): one message per batch."""

    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def put(self, batch: Batch) -> None:
        if self._client is None:
            self._client = cast("SQSClient", create_client("sqs"))
        for part in as_messages(batch):  # each within SQS's message size
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=part.to_message())


def error_code(exc: Exception) -> str:
    """AWS's error code (``TooManyInvalidationsInProgress``), or "" for a failure on the way."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


class CloudFrontCdn:
    """CreateInvalidation on one distribution; what it refuses goes to ``pending``."""

    def __init__(
        self,
        distribution_id: str,
        client: CloudFrontClient | Any | None = None,
        pending: PendingInvalidations | None = None,
    ) -> None:
        self.distribution_id = distribution_id
        self._client = client
        self.pending = pending

    @classmethod
    def from_environment(cls) -> CloudFrontCdn | None:
        """The distribution and queue the stack names in its environment; none locally."""
        distribution = os.environ.get(DISTRIBUTION_VARIABLE)
        if not distribution:
            return None
        queue = os.environ.get(QUEUE_VARIABLE)
        return cls(distribution, pending=SqsPendingInvalidations(queue) if queue else None)

    @property
    def client(self) -> CloudFrontClient:
        if self._client is None:
            self._client = cast("CloudFrontClient", create_client("cloudfront"))
        return cast("CloudFrontClient", self._client)

    def send(self, batch: Batch) -> None:
        """One CreateInvalidation; raises what CloudFront (or the way there) answered."""
        self.client.create_invalidation(
            DistributionId=self.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(batch.paths), "Items": list(batch.paths)},
                "CallerReference": batch.reference,
            },
        )
        log.info("invalidated %d paths at the CDN", len(batch.paths), extra={"paths": batch.paths})

    def invalidate(self, keys: Iterable[str]) -> None:
        """Send each batch now; from the first refusal on, keep the rest for later."""
        batches = plan(invalidation_paths(keys))
        for index, batch in enumerate(batches):
            try:
                self.send(batch)
            except REFUSALS as exc:
                log.warning(
                    "the CDN refused an invalidation (%s); it will be sent again",
                    error_code(exc) or exc,
                )
                self.defer(batches[index:])
                return

    def defer(self, batches: Sequence[Batch]) -> None:
        for batch in batches:
            try:
                if self.pending is None:
                    raise RuntimeError("no queue of pending invalidations is configured")
                self.pending.put(batch)
            except (*REFUSALS, RuntimeError):
                # The page is already right and the file gone from storage; only the edge
                # copy is left. Say how to finish by hand.
                log.exception(
                    "could not keep an invalidation for later: run aws cloudfront "
                    "create-invalidation --distribution-id %s --paths %s",
                    self.distribution_id,
                    " ".join(batch.paths),
                )


class QueuedCdn:
    """Invalidations sent through the invalidation queue only: what the view function does.
    Its function URL is an origin of the distribution, so the distribution cannot be named in
    the function's settings (the stack would depend on itself); the invalidator function,
    which has the distribution and its CreateInvalidation grant, sends each batch within
    seconds (docs/views.md)."""

    def __init__(self, pending: PendingInvalidations) -> None:
        self.pending = pending

    @classmethod
    def from_environment(cls) -> QueuedCdn | None:
        queue = os.environ.get(QUEUE_VARIABLE)
        return cls(SqsPendingInvalidations(queue)) if queue else None

    def invalidate(self, keys: Iterable[str]) -> None:
        for batch in plan(invalidation_paths(keys)):
            self.pending.put(batch)
