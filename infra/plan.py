"""The optional CloudFront flat-rate pricing plan (``skypi:pricingPlan``).

Since November 2025 CloudFront sells flat-rate plans per distribution, set with
``AWS::PricingPlanManager::Subscription``: a monthly price with an allowance of requests and
data transfer and no overage charges. A CloudFront subscription covers exactly one
distribution and exactly one AWS WAF web ACL, and may include the distribution's
KeyValueStores (PricingPlanManager API reference: CreateSubscription). This stack fits:
CloudFront Functions (included as the plan's edge compute), a KeyValueStore, Origin Access
Control, cache policies and standard logs, none of the features the plans exclude (Lambda@Edge,
real-time logs, origin access identities, legacy cache settings). So the plan turns the WAF on.

Paid tiers are created ``PENDING_APPROVAL`` and bill nothing until approved
(``ApprovePaidSubscription``); CloudFormation does not approve them, and a stack update cannot
change the tier (AWS::PricingPlanManager::Subscription).
"""

from __future__ import annotations

from aws_cdk import aws_pricingplanmanager as pricingplanmanager
from constructs import Construct

PLAN_TIERS = ("free", "pro", "business", "premium")


def pricing_plan(
    scope: Construct,
    construct_id: str,
    *,
    tier: str,
    distribution_arn: str,
    web_acl_arn: str,
    key_value_store_arns: list[str],
) -> pricingplanmanager.CfnSubscription:
    if tier not in PLAN_TIERS:
        raise ValueError(f"skypi:pricingPlan must be one of {', '.join(PLAN_TIERS)}")
    return pricingplanmanager.CfnSubscription(
        scope,
        construct_id,
        plan_family="CloudFront",
        plan_tier=tier.upper(),
        resource_arns=[distribution_arn, web_acl_arn, *key_value_store_arns],
    )
