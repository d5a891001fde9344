"""CloudFront in front of everything: the bucket (through Origin Access Control) for pages and
files, the API for uploads and admin, so pip and twine use one hostname."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_wafv2 as wafv2
from aws_cdk.aws_apigatewayv2 import HttpApi
from constructs import Construct

from infra import ROOT
from infra.config import Config
from skypi.core.http import MAX_LAMBDA_REQUEST_BYTES

EDGE_SOURCE = ROOT / "infra" / "edge" / "viewer-request.js"
# Trusted Publishing (/_/oidc/*) and PEP 740 provenance (/integrity/*) are answered by the API;
# the edge passes them through unauthenticated (the API checks what it needs).
API_PATHS = ("/legacy*", "/api/*", "/health", "/_/oidc/*", "/integrity/*")
HSTS_SECONDS = 2 * 365 * 24 * 3600


def edge_source(read_mode: str = "public", kvs_id: str = "") -> str:
    """The CloudFront Function's code: the upload ceiling from the one rule, the read mode,
    and the KeyValueStore holding the token hashes (private mode)."""
    source = (
        EDGE_SOURCE.read_text()
        .replace("__MAX_UPLOAD_REQUEST_BYTES__", str(MAX_LAMBDA_REQUEST_BYTES))
        .replace("__READ_MODE__", read_mode)
        .replace("__KVS_ID__", kvs_id)
    )
    # CloudFront takes 10 KB of code: the comments stay in the repository, not in the upload.
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


class Cdn(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        logs: s3.IBucket,
        api: HttpApi,
        tokens: cloudfront.KeyValueStore,
    ) -> None:
        super().__init__(scope, construct_id)
        self.edge_function = cloudfront.Function(
            self,
            "EdgeRules",
            code=cloudfront.FunctionCode.from_inline(
                edge_source(config.read_mode, tokens.key_value_store_id)
            ),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            key_value_store=tokens,
            comment="skypi edge rules: names, trailing slash, PEP 691 negotiation, upload size",
        )
        rules = [
            cloudfront.FunctionAssociation(
                function=self.edge_function, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
            )
        ]
        bucket_origin = origins.S3BucketOrigin.with_origin_access_control(bucket)
        api_origin = origins.HttpOrigin(
            Fn.select(2, Fn.split("/", api.api_endpoint)),  # https://<id>.execute-api.../
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
        )
        security = cloudfront.ResponseSecurityHeadersBehavior(
            strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                access_control_max_age=Duration.seconds(HSTS_SECONDS),
                include_subdomains=True,
                override=True,
            ),
            content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
        )
        page_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "PageHeaders",
            comment="skypi pages: HSTS, nosniff, Vary: Accept (the answer depends on it)",
            security_headers_behavior=security,
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(header="Vary", value="Accept", override=True)
                ]
            ),
        )
        file_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "FileHeaders",
            comment="skypi files: HSTS, nosniff",
            security_headers_behavior=security,
        )
        # Pages carry `max-age=0, must-revalidate` (S3 metadata), so CloudFront revalidates
        # them with the origin on every request; the URI already names the representation,
        # so nothing else goes into the cache key.
        pages = cloudfront.CachePolicy(
            self,
            "Pages",
            comment="skypi pages: revalidated every time (cheap 304s from S3)",
            min_ttl=Duration.seconds(0),
            default_ttl=Duration.seconds(0),
            max_ttl=Duration.days(365),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )

        def read(
            cache: cloudfront.ICachePolicy, headers: cloudfront.IResponseHeadersPolicy
        ) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=bucket_origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                # Every method reaches the function, which answers writes with 405 (the edge
                # vectors); only GET and HEAD ever reach the bucket.
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                function_associations=rules,
                compress=True,
                cache_policy=cache,
                response_headers_policy=headers,
            )

        to_api = cloudfront.BehaviorOptions(
            origin=api_origin,
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
            response_headers_policy=file_headers,
            function_associations=rules,
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="skypi package index",
            default_behavior=read(pages, page_headers),
            additional_behaviors={
                # Files never change: cached for good.
                "/packages/*": read(cloudfront.CachePolicy.CACHING_OPTIMIZED, file_headers),
                **dict.fromkeys(API_PATHS, to_api),
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            # Only with a custom certificate: the default *.cloudfront.net one is fixed at TLSv1.
            minimum_protocol_version=(
                cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if config.certificate_arn else None
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=logs,
            log_file_prefix="cloudfront/",
            domain_names=[config.domain_name] if config.domain_name else None,
            certificate=(
                acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn)
                if config.certificate_arn
                else None
            ),
            web_acl_id=self._web_acl().attr_arn if config.waf else None,
        )
        # With ListBucket, a missing object is a 404 for pip rather than S3's 403. The edge
        # function never lets a request for the bucket's root (a listing) through.
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                conditions={
                    "StringEquals": {
                        "AWS:SourceArn": (
                            f"arn:{Aws.PARTITION}:cloudfront::{Aws.ACCOUNT_ID}:distribution/"
                            f"{self.distribution.distribution_id}"
                        )
                    }
                },
            )
        )

    def _web_acl(self) -> wafv2.CfnWebACL:
        """AWS managed rules and a per-IP rate limit; body-size rules count only, because
        uploads are large by nature. CLOUDFRONT scope: deploy the stack in us-east-1."""

        def managed(name: str, priority: int, count: list[str]) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule,
                                action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                            )
                            for rule in count
                        ]
                        or None,
                    )
                ),
                visibility_config=_visibility(name),
            )

        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="CLOUDFRONT",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("skypi"),
            rules=[
                managed("AWSManagedRulesCommonRuleSet", 0, ["SizeRestrictions_BODY"]),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 1, []),
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=2,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP", limit=3000
                        )
                    ),
                    visibility_config=_visibility("RateLimitPerIp"),
                ),
            ],
        )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
