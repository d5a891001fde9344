"""Tokens on AWS: the DynamoDB table the API checks, and its mirror at the edge.

The table's stream feeds a small function that writes each token's hash and edge value
(scope, projects, expiry) to a CloudFront KeyValueStore, which the viewer-request function
reads; a create or revoke reaches every edge location within seconds.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.alarms import alarm_on
from infra.config import Config
from infra.functions import skypi_function
from infra.names import regional_name
from infra.queues import failure_queue


class Auth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        alarm_topic: sns.ITopic | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = self._token_table(config)
        self.publishers = self._publisher_table(config)
        self.mirror = cloudfront.KeyValueStore(
            self, "TokenMirror", comment="skypi token hashes for the edge"
        )
        mirror = self.mirror.node.default_child
        assert isinstance(mirror, cloudfront.CfnKeyValueStore)
        mirror.name = regional_name(self.mirror, 64)  # names are per account, not per region
        self.failures = failure_queue(self, "SyncFailures")
        self.sync = skypi_function(
            self,
            "Sync",
            config=config,
            code=code,
            handler="skypi.edge_tokens.handler.handler",
            description="skypi: token table stream -> the edge's KeyValueStore",
            timeout=Duration.seconds(60),
            environment={
                "SKYPI_KVS_ARN": self.mirror.key_value_store_arn,
                "POWERTOOLS_SERVICE_NAME": "token-sync",
            },
        )
        self.sync.add_event_source(
            sources.DynamoEventSource(
                self.table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=100,
                bisect_batch_on_error=True,
                retry_attempts=10,
                on_failure=sources.SqsDlq(self.failures),
            )
        )
        self.grant_mirror_writes(self.sync)
        alarm_on(
            self,
            "SyncFailuresAlarm",
            self.failures.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            "Token changes that never reached the edge: run `skypi token list --table ...` and "
            "re-create or revoke the token",
            alarm_topic,
        )

    def _token_table(self, config: Config) -> dynamodb.Table:
        """Token records by the hash of their secret, streamed to the edge's copy."""
        return dynamodb.Table(
            self,
            "Tokens",
            partition_key=dynamodb.Attribute(name="hash", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            # Tokens minted by Trusted Publishing carry one: their audit record goes after 90 days.
            time_to_live_attribute="ttl",
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )

    def _publisher_table(self, config: Config) -> dynamodb.Table:
        """Trusted publishers (kind "publisher") and the OIDC tokens already exchanged (kind
        "oidc-token", deleted by TTL after they expire): skypi.store.dynamo_publishers."""
        return dynamodb.Table(
            self,
            "Publishers",
            partition_key=dynamodb.Attribute(name="kind", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="ttl",
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )

    def grant_mirror_writes(self, function: lambda_.IFunction) -> None:
        """Change keys of the edge's KeyValueStore (the token hashes; a quarantined project's
        record), with its ETag protocol: describe it, update keys; nothing else (no listing,
        no other store)."""
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "cloudfront-keyvaluestore:DescribeKeyValueStore",
                    "cloudfront-keyvaluestore:UpdateKeys",
                ],
                resources=[self.mirror.key_value_store_arn],
            )
        )

    def grant_exchange(self, function: lambda_.IFunction) -> None:
        """Trusted Publishing: read the publishers (query their key space only), record each
        exchanged OIDC token (put into its key space only), write the minted tokens."""
        for actions, kind in (
            (["dynamodb:Query"], "publisher"),
            (["dynamodb:PutItem"], "oidc-token"),
        ):
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=actions,
                    resources=[self.publishers.table_arn],
                    conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [kind]}},
                )
            )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[self.table.table_arn])
        )

    def grant_check(self, function: lambda_.IFunction) -> None:
        """Look a token up and record its last use; nothing else (no listing, no writes)."""
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[self.table.table_arn],
            )
        )
