"""The one way the stack makes an SQS queue: encrypted, TLS only, failures kept 14 days."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# The longest SQS keeps a message (the default is 4 days): time for someone to look.
FAILURE_RETENTION = Duration.days(14)


def failure_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """A queue that holds what failed until someone looks (a dead-letter queue)."""
    return sqs.Queue(
        scope,
        construct_id,
        retention_period=FAILURE_RETENTION,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
    )


def work_queue(
    scope: Construct,
    construct_id: str,
    *,
    visibility_timeout: Duration,
    dead_letters: sqs.IQueue,
    max_receive_count: int,
) -> sqs.Queue:
    """A queue of work whose message moves to ``dead_letters`` after ``max_receive_count``
    failed receives."""
    return sqs.Queue(
        scope,
        construct_id,
        visibility_timeout=visibility_timeout,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        dead_letter_queue=sqs.DeadLetterQueue(
            max_receive_count=max_receive_count, queue=dead_letters
        ),
    )
