"""What CloudFront requires in us-east-1, made there by the app in a small companion stack.

CloudFront is a global service configured from us-east-1, and three of its inputs must live
there whatever the region of the index itself:

- a ``CLOUDFRONT``-scoped WAF web ACL ("you must create it in the US East (N. Virginia)
  Region"; elsewhere CloudFormation answers "The scope is not valid");
- the ACM certificate of a custom domain ("the certificate must be in us-east-1");
- the bucket CloudFront's standard logs (legacy) go to: CloudFront does not deliver them to
  buckets in some Regions (opt-in ones, such as af-south-1), and us-east-1 is never one of
  them. Putting the bucket here in every region keeps one rule and no list to go stale.

The main stack reads them with CDK cross-region references (``crossRegionReferences``): SSM
parameters written in us-east-1 by this stack and read by the main one, so this stack deploys
first. docs/deploy.md cites the AWS pages for each rule.
"""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import Environment, Stack
from aws_cdk import aws_certificatemanager as acm
from constructs import Construct, Node

from infra.config import Config
from infra.storage import log_bucket
from infra.waf import web_acl

CLOUDFRONT_REGION = "us-east-1"
# Without a region (an offline `cdk synth` with no AWS configuration) the stacks are
# synthesized for this one; `cdk deploy` passes the region of your credentials.
DEFAULT_REGION = CLOUDFRONT_REGION


def target(node: Node) -> tuple[str | None, str]:
    """The account (if known) and region the index is deployed to: ``-c skypi:account`` /
    ``-c skypi:region``, else what the CDK CLI passes (``CDK_DEFAULT_ACCOUNT`` /
    ``CDK_DEFAULT_REGION``), else no account and us-east-1. Cross-region references need an
    explicit region on both stacks."""
    account = node.try_get_context("skypi:account") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = node.try_get_context("skypi:region") or os.environ.get("CDK_DEFAULT_REGION")
    return (str(account) if account else None), str(region or DEFAULT_REGION)


def companion_name(stack_name: str, region: str) -> str:
    """One companion per main stack: two indexes of one name in two regions of one account
    each have their own in us-east-1."""
    return f"{stack_name}-global-{region}"


class CompanionStack(Stack):
    """The web ACL (``skypi:waf``), the custom domain's certificate (a domain without
    ``skypi:certificateArn``) and the bucket of CloudFront's standard logs, in us-east-1."""

    def __init__(
        self, scope: Construct, construct_id: str, *, account: str | None, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=account, region=CLOUDFRONT_REGION),
            cross_region_references=True,
            **kwargs,
        )
        config = Config.from_context(self.node)
        # CloudFront's standard logs (legacy) are delivered with an ACL grant.
        self.logs = log_bucket(self, "CloudFrontLogs", config=config)
        self.web_acl = web_acl(self, "WebAcl") if config.waf else None
        self.certificate: acm.ICertificate | None = None
        if config.certificate_arn:
            self.certificate = acm.Certificate.from_certificate_arn(
                self, "Certificate", config.certificate_arn
            )
        elif config.domain_name:
            # DNS validation: the stack waits until the CNAME ACM asks for is in the domain's
            # DNS (shown in the ACM console and the stack's events).
            self.certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=config.domain_name,
                validation=acm.CertificateValidation.from_dns(),
            )
