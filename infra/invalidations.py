"""CloudFront invalidations that are sure to happen: the API and the indexer invalidate at once,
and put what CloudFront refuses (too many in progress, throttled) on a queue that the
invalidator function drains; what keeps failing ends in a dead-letter queue with an alarm."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.alarms import alarm_on
from infra.config import Config
from infra.functions import skypi_function
from infra.queues import failure_queue, work_queue

FUNCTION_TIMEOUT = Duration.seconds(30)
# A refused invalidation comes back every five minutes (also Lambda's advice: at least six
# times the function's timeout) for an hour, room for the ones in progress to finish; then it
# waits in the dead-letter queue for 14 days, and the alarm says so.
VISIBILITY_TIMEOUT = Duration.minutes(5)
MAX_RECEIVE_COUNT = 12


class Invalidations(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        distribution: cloudfront.IDistribution,
        senders: list[lambda_.Function],
        alarm_topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = failure_queue(self, "DeadLetters")
        self.queue = work_queue(
            self,
            "Pending",
            visibility_timeout=VISIBILITY_TIMEOUT,
            dead_letters=self.dead_letters,
            max_receive_count=MAX_RECEIVE_COUNT,
        )
        self.function = skypi_function(
            self,
            "Function",
            config=config,
            code=code,
            handler="skypi.indexer.invalidator.handler",
            description="skypi invalidator: sends again the CloudFront invalidations refused",
            timeout=FUNCTION_TIMEOUT,
            environment={
                "SKYPI_DISTRIBUTION_ID": distribution.distribution_id,
                "POWERTOOLS_SERVICE_NAME": "invalidator",
            },
        )
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=10, report_batch_item_failures=True)
        )
        distribution.grant_create_invalidation(self.function)
        self._allow(senders, distribution)
        self._alarm(alarm_topic)

    def _allow(
        self, senders: list[lambda_.Function], distribution: cloudfront.IDistribution
    ) -> None:
        """A deleted file, or a restored one, must leave the edge caches (files are cached
        for a year): the API (admin delete) and the indexer (aws s3 rm, restores) invalidate,
        and keep what is refused on the queue."""
        for sender in senders:
            sender.add_environment("SKYPI_DISTRIBUTION_ID", distribution.distribution_id)
            sender.add_environment("SKYPI_INVALIDATION_QUEUE_URL", self.queue.queue_url)
            distribution.grant_create_invalidation(sender)
            self.queue.grant_send_messages(sender)

    def _alarm(self, alarm_topic: sns.ITopic | None) -> None:
        alarm_on(
            self,
            "DeadLettersAlarm",
            self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)
            ),
            "CloudFront invalidations refused for an hour: deleted or restored files may still "
            "be served from the edge; inspect the invalidator's logs, then redrive the messages",
            alarm_topic,
        )
