"""Where a rebuild of the root listing is asked for on AWS: a delayed message on the indexer's
own queue (``skypi.indexer.deferred``).

SQS delays one message by ``DelaySeconds``, 0 to 900 seconds (15 minutes); the message is
invisible to consumers until then.
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-timers.html
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

from skypi.core.constants import (
    DEFAULT_ROOT_DELAY_SECONDS,
    MAX_ROOT_DELAY_SECONDS,
    ROOT_DELAY_VARIABLE,
    ROOT_QUEUE_VARIABLE,
    ROOT_REBUILD_MESSAGE,
)
from skypi.store.aws import create_client

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def root_delay(text: str | None) -> int:
    """The seconds a rebuild waits, from the environment's text (none: the default); a
    ``ValueError`` names the allowed range.

    >>> root_delay(None), root_delay("60")
    (30, 60)
    """
    if text is None or not text.strip():
        return DEFAULT_ROOT_DELAY_SECONDS
    try:
        delay = int(text)
    except ValueError:
        delay = -1
    if not 0 <= delay <= MAX_ROOT_DELAY_SECONDS:
        raise ValueError(
            f"{ROOT_DELAY_VARIABLE} must be 0 to {MAX_ROOT_DELAY_SECONDS} seconds "
            f"(SQS's DelaySeconds), not {text!r}"
        )
    return delay


class SqsRootRebuilds:
    """The indexer's queue (SendMessage only): one delayed message per rebuild asked for."""

    def __init__(self, queue_url: str, client: SQSClient | Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @classmethod
    def from_environment(cls) -> SqsRootRebuilds | None:
        """The queue the stack names in the function's environment; none locally."""
        queue = os.environ.get(ROOT_QUEUE_VARIABLE)
        return cls(queue) if queue else None

    def request(self, delay: int) -> None:
        if self._client is None:
            self._client = cast("SQSClient", create_client("sqs"))
        self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=ROOT_REBUILD_MESSAGE,
            DelaySeconds=min(max(delay, 0), MAX_ROOT_DELAY_SECONDS),
        )


def environment_delay() -> int:
    return root_delay(os.environ.get(ROOT_DELAY_VARIABLE))
