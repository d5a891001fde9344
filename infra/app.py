"""``cdk synth`` / ``cdk deploy`` entry point (see cdk.json): the index's stack in its region,
and its companion in us-east-1 (infra/companion.py)."""

from __future__ import annotations

from aws_cdk import App, Environment  # (infra/__init__ has pointed jsii at Node 24 by now)

from infra.companion import CLOUDFRONT_REGION, CompanionStack, companion_name, target
from infra.config import Config
from infra.nag import check
from infra.stack import SkypiStack


def build(app: App) -> SkypiStack:
    account, region = target(app.node)
    name = app.node.try_get_context("skypi:stackName") or "Skypi"
    if Config.from_context(app.node).pricing_plan and region != CLOUDFRONT_REGION:
        raise ValueError(
            "skypi:pricingPlan: the plan's subscription is made through the PricingPlanManager "
            f"API, which is only in {CLOUDFRONT_REGION}; deploy there, or subscribe the "
            "distribution in the CloudFront console"
        )
    companion = CompanionStack(
        app,
        companion_name(name, region),
        account=account,
        description=f"skypi: what CloudFront requires in us-east-1, for {name} in {region}",
    )
    stack = SkypiStack(
        app,
        name,
        companion=companion,
        env=Environment(account=account, region=region),
        description="skypi: a private Python package index (S3, CloudFront, API Gateway, Lambda)",
    )
    check(app, stack, companion)
    return stack


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
