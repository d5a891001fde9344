"""cdk-nag (AwsSolutions) on both stacks, and every finding that stays, acknowledged with why.

cdk-nag 3 wants one acknowledgement per finding id, wildcard findings included.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks

from infra.stack import SkypiStack
from skypi.core.keys import granted_patterns

WILDCARD_OBJECTS = (
    f"the grants name key prefixes of the one bucket ({', '.join(granted_patterns())}, "
    "from the key layout, skypi.core.keys): "
    "per-object ARNs cannot be known in advance; no bucket-wide object access is granted"
)

REASONS: dict[str, str] = {
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AWSLambdaBasicExecutionRole]": "the AWS managed basic execution role only lets a "
    "function write its own logs",
    "AwsSolutions-IAM5[Resource::*]": "X-Ray's PutTraceSegments/PutTelemetryRecords and "
    "DynamoDB's ListStreams (the token sync's event source) take no resource: AWS documents "
    "'*' for them",
    "AwsSolutions-APIG4": "uploads and admin calls are authorized by the app itself with "
    "scoped skypi tokens over Basic auth (what twine, uv and pip send); a Gateway authorizer "
    "cannot read them without another Lambda on every request",
    "AwsSolutions-SQS3": "the token sync's failure queue is where a DynamoDB stream batch "
    "ends up after its retries: the end of the line, watched by an alarm",
    "AwsSolutions-CFR1": "a package index is used from anywhere the team works; geo "
    "restriction is left to the operator",
}
# The companion stack (infra/companion.py), in us-east-1.
COMPANION_REASONS: dict[str, str] = {
    "AwsSolutions-S1": "this bucket is where CloudFront's standard logs go; logging the log "
    "bucket's own access would take yet another bucket, for logs of logs",
}
CONDITIONAL = {
    "AwsSolutions-CFR2": "WAF is optional (skypi:waf=true, made in the us-east-1 companion "
    "stack): it costs a fixed monthly fee that a small team's index may not want",
    "AwsSolutions-CFR4": "without a custom domain, CloudFront's default certificate allows "
    "TLSv1; set skypi:domainName and skypi:certificateArn to enforce TLS 1.2",
    "AwsSolutions-SNS2": "CloudWatch alarms cannot publish to a topic encrypted with the AWS "
    "managed SNS key; the alarm texts hold no secrets",
}


VIEW_SCHEDULES = (
    "the view Lambda creates and updates its schedules in its own schedule group only; their "
    "names are chosen at run time"
)


def view_schedules_id(stack: SkypiStack) -> str:
    """The IAM5 id of the view Lambda's schedule grant (every schedule of its group)."""
    group = stack.get_logical_id(stack.views.group)
    return (
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:"
        f"<AWS::AccountId>:schedule/<{group}>/*]"
    )


def wildcard_ids(stack: Stack) -> list[str]:
    """The IAM5 ids of the prefix grants, written as cdk-nag writes them."""
    bucket = stack.get_logical_id(stack.storage.bucket.node.default_child)  # type: ignore[attr-defined]
    ids = []
    for prefix in granted_patterns():
        ids.append(f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}]")
    return ids


def check(app: App, stack: SkypiStack, companion: Stack) -> None:
    """cdk-nag on both stacks (the plugin checks the whole app), each with its own
    acknowledgements."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    reasons = dict(REASONS)
    if not stack.config.waf:
        reasons["AwsSolutions-CFR2"] = CONDITIONAL["AwsSolutions-CFR2"]
    if not stack.config.domain_name:
        reasons["AwsSolutions-CFR4"] = CONDITIONAL["AwsSolutions-CFR4"]
    if stack.config.alarm_email:
        reasons["AwsSolutions-SNS2"] = CONDITIONAL["AwsSolutions-SNS2"]
    for finding in wildcard_ids(stack):
        reasons[finding] = WILDCARD_OBJECTS
    reasons[view_schedules_id(stack)] = VIEW_SCHEDULES
    for finding, reason in reasons.items():
        Validations.of(stack).acknowledge(Acknowledgment(id=finding, reason=reason))
    for finding, reason in COMPANION_REASONS.items():
        Validations.of(companion).acknowledge(Acknowledgment(id=finding, reason=reason))
