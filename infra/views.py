"""The view Lambda: what ``/view/*`` answers when the bucket has no object for it, and the
schedule that makes a view's pages again when time alone changes them (docs/views.md).

CloudFront sends a ``/view/*`` read to the bucket first; a missing key (403 or 404) fails over
to this function's URL, the second origin of the behaviour's origin group (infra/cdn.py). The
URL takes only requests signed by CloudFront (``AWS_IAM``, reached through origin access
control), so the function never sees a viewer's credentials: the edge function has checked
them before the cache. A stored page records when it next changes by itself; the function
arms one one-shot EventBridge Scheduler schedule, in its own group, to wake it then (invariant
11: nothing runs while nothing is due).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import Config
from infra.functions import skypi_function
from infra.grants import object_statements
from infra.names import regional_name
from skypi.core.keys import OSV_PREFIX, VIEW, VIEW_POLICY, VIEWS_PREFIX

HANDLER: Final = "skypi.api.viewhandler.handler"
# How long CloudFront waits for the function URL to answer (the origin's response timeout):
# 60 s is the most a distribution takes without a quota increase (CloudFront Developer Guide,
# "Response timeout"). The function is told, so it answers a slow fill with a redirect before.
ORIGIN_READ_TIMEOUT: Final = Duration.seconds(60)
# A scheduled run (pages due, a large file filled in the background) may take longer than a
# viewer waits: Lambda's maximum. A URL invocation bounds itself by ORIGIN_READ_TIMEOUT.
FUNCTION_TIMEOUT: Final = Duration.minutes(15)
MEMORY_MB: Final = 1024
# The environment the handler reads (besides SKYPI_BUCKET, as the other functions).
SCHEDULE_GROUP_VARIABLE: Final = "SKYPI_VIEW_SCHEDULE_GROUP"
SCHEDULER_ROLE_VARIABLE: Final = "SKYPI_VIEW_SCHEDULER_ROLE_ARN"
ORIGIN_TIMEOUT_VARIABLE: Final = "SKYPI_VIEW_ORIGIN_TIMEOUT"
# The schedule actions the function calls (one schedule, created, or updated when it exists).
SCHEDULE_ACTIONS: Final = ("scheduler:CreateSchedule", "scheduler:UpdateSchedule")
QUEUE_VARIABLE: Final = "SKYPI_INVALIDATION_QUEUE_URL"  # skypi.store.cdn's


class Views(Construct):
    """The view Lambda, its function URL, its schedule group and the role Scheduler assumes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        code: lambda_.Code,
    ) -> None:
        super().__init__(scope, construct_id)
        self.group = scheduler.CfnScheduleGroup(self, "Schedules", name=regional_name(self, 64))
        self.group_name: str = self.group.ref  # Ref: the group's name
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                # the confused deputy: only this account's schedules of this group
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnEquals": {"aws:SourceArn": self.group.attr_arn},
                },
            ),
            description="EventBridge Scheduler: wakes the view Lambda when a page is due",
        )
        self.function = skypi_function(
            self,
            "Function",
            config=config,
            code=code,
            handler=HANDLER,
            description="skypi views: /view/* misses (CloudFront failover) and due pages",
            timeout=FUNCTION_TIMEOUT,
            memory_size=MEMORY_MB,
            reserved_concurrent_executions=config.view_concurrency or None,
            environment=self._environment(config, bucket),
        )
        self.url = self.function.add_function_url(
            auth_type=lambda_.FunctionUrlAuthType.AWS_IAM,
            invoke_mode=lambda_.InvokeMode.BUFFERED,
        )
        self._grant(bucket)
        self._follow(bucket)

    def _follow(self, bucket: s3.IBucket) -> None:
        """A view's policy or the OSV data written (by ``skypi view ... --bucket`` or by hand)
        invokes the function, which makes the stored pages it affects again at once."""
        for prefix, suffix in ((VIEWS_PREFIX, f"/{VIEW_POLICY}"), (OSV_PREFIX, ".json")):
            bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.function),
                s3.NotificationKeyFilter(prefix=prefix, suffix=suffix),
            )

    def queue_invalidations(self, queue: sqs.IQueue) -> None:
        """The cached files it deletes leave CloudFront's caches through the invalidation
        queue (the distribution, whose origin this function's URL is, cannot be named in its
        settings: the stack would depend on itself); the invalidator sends them."""
        self.function.add_environment(QUEUE_VARIABLE, queue.queue_url)
        queue.grant_send_messages(self.function)

    def _environment(self, config: Config, bucket: s3.IBucket) -> dict[str, str]:
        """The function's settings. Its own ARN (a schedule's target) comes from its context:
        naming it here would make the function depend on itself."""
        environment = {
            "SKYPI_BUCKET": bucket.bucket_name,
            "POWERTOOLS_SERVICE_NAME": "view",
            SCHEDULE_GROUP_VARIABLE: self.group_name,
            SCHEDULER_ROLE_VARIABLE: self.scheduler_role.role_arn,
            ORIGIN_TIMEOUT_VARIABLE: str(ORIGIN_READ_TIMEOUT.to_seconds()),
        }
        if config.domain_name:  # the distribution's own domain would be a dependency cycle
            environment["SKYPI_INDEX_URL"] = f"https://{config.domain_name}"
        return environment

    def _grant_invoke_itself(self) -> None:
        """The function sends itself a file to fill (an asynchronous invocation). Not in the
        role's default policy, which the function depends on: naming the function's ARN there
        is a circular dependency (aws-cdk issues 11020 and 13982, "grant a function permission
        to invoke itself"); a policy of its own is attached after the function exists."""
        iam.Policy(
            self,
            "InvokeItself",
            roles=[self.function.role] if self.function.role else [],
            statements=[
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
                )
            ],
        )

    def schedule_arn(self) -> str:
        """Every schedule of the view's group, and only those."""
        return (
            f"arn:{Aws.PARTITION}:scheduler:{Aws.REGION}:{Aws.ACCOUNT_ID}:schedule/"
            f"{self.group_name}/*"
        )

    def _grant(self, bucket: s3.IBucket) -> None:
        """The view families of the key layout (and the private pages and namespace records
        it reads), listing for a HEAD's 404; schedules in its group only, passing only the
        scheduler's role; the scheduler's role may invoke this function only."""
        statements = [
            *object_statements(bucket, VIEW),
            iam.PolicyStatement(  # a HEAD of a missing key answers 404, not 403
                actions=["s3:ListBucket"], resources=[bucket.bucket_arn]
            ),
            iam.PolicyStatement(actions=list(SCHEDULE_ACTIONS), resources=[self.schedule_arn()]),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            ),
        ]
        for statement in statements:
            self.function.add_to_role_policy(statement)
        self._grant_invoke_itself()
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.function.function_arn]
            )
        )
