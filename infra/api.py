"""API Gateway HTTP API → the API Lambda (FastAPI through Mangum): uploads, admin, reads."""

from __future__ import annotations

import json

from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.auth import Auth
from infra.config import Config
from infra.functions import _retention, skypi_function
from infra.grants import object_statements
from skypi.core.keys import API

ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "integrationError": "$context.integrationErrorMessage",
    "userAgent": "$context.identity.userAgent",
}


def oidc_audience(config: Config) -> str:
    """The ``aud`` CI tokens are issued for: the index's own domain, or else one unique to this
    account, region and stack (a token for another index is never accepted here)."""
    if config.oidc_audience or config.domain_name:
        return str(config.oidc_audience or config.domain_name)
    return Fn.join("-", ["skypi", Aws.ACCOUNT_ID, Aws.REGION, Aws.STACK_NAME])


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        code: lambda_.Code,
        auth: Auth,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = skypi_function(
            self,
            "Function",
            config=config,
            code=code,
            handler="skypi.api.handler.handler",
            description="skypi API: uploads (twine, uv publish), admin, and the read routes",
            timeout=Duration.seconds(30),  # API Gateway's own integration limit
            environment={
                "SKYPI_BUCKET": bucket.bucket_name,
                "SKYPI_TOKEN_TABLE": auth.table.table_name,
                "SKYPI_PUBLISHER_TABLE": auth.publishers.table_name,
                "SKYPI_OIDC_AUDIENCE": oidc_audience(config),
                # PEP 792: a quarantined project's record, which the edge function reads
                "SKYPI_KVS_ARN": auth.mirror.key_value_store_arn,
                "SKYPI_PRIVATE": "true" if config.read_mode == "private" else "false",
                "POWERTOOLS_SERVICE_NAME": "api",
            },
        )
        self._grant(bucket)
        auth.grant_check(self.function)
        auth.grant_mirror_writes(self.function)  # a quarantine's record (skypi.store.kvs)
        # Trusted Publishing fetches the issuers' keys over https (GitHub, GitLab, ...): the
        # function runs outside any VPC, so it has internet egress with no NAT to pay for.
        auth.grant_exchange(self.function)
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            description="skypi: upload and admin API (also a complete read-only index)",
            default_integration=integrations.HttpLambdaIntegration("Lambda", self.function),
        )
        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays(_retention(config.log_retention_days))
        )
        stage = self.http_api.default_stage
        assert stage is not None
        cfn_stage = stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )
        # Throttling against token guessing and runaway clients (per stage, every route).
        cfn_stage.default_route_settings = apigw.CfnStage.RouteSettingsProperty(
            throttling_rate_limit=config.api_rate_limit,
            throttling_burst_limit=config.api_burst_limit,
        )

    def _grant(self, bucket: s3.IBucket) -> None:
        """What the key layout lets the API do (store uploads create-only, rewrite pages and
        records, delete a file on an admin's request or one it has just refused), and list
        keys; no bucket-wide object rights."""
        statements = [
            *object_statements(bucket, API),
            iam.PolicyStatement(  # a HEAD of a missing key answers 404, not 403
                actions=["s3:ListBucket"], resources=[bucket.bucket_arn]
            ),
        ]
        for statement in statements:
            self.function.add_to_role_policy(statement)
