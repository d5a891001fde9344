"""S3 events for distribution files → SQS (with a dead-letter queue) → the indexer Lambda."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.alarms import alarm_on
from infra.config import Config
from infra.functions import skypi_function
from infra.grants import object_statements
from infra.queues import failure_queue, work_queue
from skypi.core.constants import (
    DISTRIBUTION_SUFFIXES,
    ROOT_DELAY_VARIABLE,
    ROOT_QUEUE_VARIABLE,
)
from skypi.core.keys import INDEXER, PACKAGES_PREFIX

FUNCTION_TIMEOUT = Duration.seconds(120)
MAX_RECEIVE_COUNT = 5


class Indexer(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        code: lambda_.Code,
        alarm_topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.root_delay = config.root_delay_seconds
        self.dead_letters = failure_queue(self, "DeadLetters")
        self.queue = work_queue(
            self,
            "Events",
            # Lambda's advice: six times the function timeout, so retries do not overlap.
            visibility_timeout=Duration.seconds(FUNCTION_TIMEOUT.to_seconds() * 6),
            dead_letters=self.dead_letters,
            max_receive_count=MAX_RECEIVE_COUNT,
        )
        # One notification per suffix: the indexer's own .metadata writes under packages/
        # must not trigger it (docs/aws-runtime.md).
        for suffix in DISTRIBUTION_SUFFIXES:
            for event in (s3.EventType.OBJECT_CREATED, s3.EventType.OBJECT_REMOVED):
                bucket.add_event_notification(
                    event,
                    s3n.SqsDestination(self.queue),
                    s3.NotificationKeyFilter(prefix=PACKAGES_PREFIX, suffix=suffix),
                )
        self.function = skypi_function(
            self,
            "Function",
            config=config,
            code=code,
            handler="skypi.indexer.handler.handler",
            description="skypi indexer: S3 events for distribution files -> index pages",
            timeout=FUNCTION_TIMEOUT,
            environment={"SKYPI_BUCKET": bucket.bucket_name, "POWERTOOLS_SERVICE_NAME": "indexer"},
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=10,
                max_batching_window=Duration.seconds(1),
                report_batch_item_failures=True,
            )
        )
        self._grant(bucket)
        self.allow_root_rebuilds(self.function)
        self._alarms(alarm_topic)

    def allow_root_rebuilds(self, writer: lambda_.Function) -> None:
        """A function that indexes (this one, and the API, which indexes uploads at once)
        asks for a rebuild of the root listing as a delayed message on this queue, which
        this function receives (skypi.indexer.deferred)."""
        writer.add_environment(ROOT_QUEUE_VARIABLE, self.queue.queue_url)
        writer.add_environment(ROOT_DELAY_VARIABLE, str(self.root_delay))
        self.queue.grant_send_messages(writer)

    def _grant(self, bucket: s3.IBucket) -> None:
        """What the key layout lets the indexer do: read what it indexes, write pages and
        .metadata, restore an overwritten file from its old version; delete only .metadata
        files, never a distribution."""
        statements = [
            *object_statements(bucket, INDEXER),
            iam.PolicyStatement(  # a HEAD of a missing key answers 404, not 403
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[bucket.bucket_arn],
            ),
        ]
        for statement in statements:
            self.function.add_to_role_policy(statement)

    def _alarms(self, topic: sns.ITopic | None) -> None:
        five_minutes = Duration.minutes(5)
        alarm_on(
            self,
            "DeadLettersAlarm",
            self.dead_letters.metric_approximate_number_of_messages_visible(period=five_minutes),
            "S3 events the indexer gave up on: inspect the DLQ, then run `skypi reindex` or "
            "redrive the messages",
            topic,
        )
        alarm_on(
            self,
            "ErrorsAlarm",
            self.function.metric_errors(period=five_minutes),
            "The indexer function failed (its batches are retried)",
            topic,
        )
        alarm_on(
            self,
            "ConflictsAlarm",
            cloudwatch.Metric(
                namespace="skypi",
                metric_name="Conflicts",
                dimensions_map={"service": "indexer"},
                statistic="Sum",
                period=five_minutes,
            ),
            "A distribution file was overwritten in place or dropped twice under one name; the "
            "indexer kept the original (see its logs)",
            topic,
        )
