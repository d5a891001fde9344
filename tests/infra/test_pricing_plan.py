"""The opt-in CloudFront flat-rate plan (``skypi:pricingPlan``): the subscription CloudFormation
creates, and the settings it implies. Synthesized on its own (the shared synthesis of the app
is pay-as-you-go, the default)."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template  # conftest has pointed jsii at Node 24

from infra.config import Config
from infra.plan import pricing_plan


def test_the_subscription_covers_the_distribution_its_web_acl_and_the_token_store() -> None:
    """A CloudFront subscription takes exactly one distribution and one web ACL, and may take
    KeyValueStores (PricingPlanManager API reference: CreateSubscription)."""
    stack = Stack(App(), "PlanUnderTest")
    arns = {
        "distribution_arn": "arn:aws:cloudfront::123456789012:distribution/E2QWRUHEXAMPLE",
        "web_acl_arn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/skypi/abc",
        "key_value_store_arns": ["arn:aws:cloudfront::123456789012:key-value-store/abc"],
    }
    pricing_plan(stack, "Plan", tier="pro", **arns)  # type: ignore[arg-type]
    (subscription,) = (
        Template.from_stack(stack).find_resources("AWS::PricingPlanManager::Subscription").values()
    )
    properties = subscription["Properties"]
    assert properties["PlanFamily"] == "CloudFront"
    assert properties["PlanTier"] == "PRO"
    assert properties["ResourceArns"] == [
        arns["distribution_arn"],
        arns["web_acl_arn"],
        *arns["key_value_store_arns"],
    ]
    with pytest.raises(ValueError, match="pricingPlan"):
        pricing_plan(stack, "Bad", tier="gold", **arns)  # type: ignore[arg-type]


def test_a_plan_turns_the_waf_on_and_is_off_by_default() -> None:
    assert Config.from_context(App().node).pricing_plan is None
    config = Config.from_context(App(context={"skypi:pricingPlan": "Business"}).node)
    assert (config.pricing_plan, config.waf) == ("business", True)
    with pytest.raises(ValueError, match="pricingPlan"):
        Config.from_context(App(context={"skypi:pricingPlan": "gold"}).node)
