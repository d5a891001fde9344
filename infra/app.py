"""``cdk synth`` / ``cdk deploy`` entry point (see cdk.json)."""

from __future__ import annotations

import os

from aws_cdk import App, Environment  # (infra/__init__ has pointed jsii at Node 24 by now)

from infra.nag import check
from infra.stack import SkypiStack


def build(app: App) -> SkypiStack:
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    env = Environment(account=account, region=region) if account and region else None
    stack = SkypiStack(
        app,
        app.node.try_get_context("skypi:stackName") or "Skypi",
        env=env,
        description="skypi: a private Python package index (S3, CloudFront, API Gateway, Lambda)",
    )
    check(app, stack)
    return stack


def main() -> None:
    app = App()
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
