"""The optional web ACL (``skypi:waf``): AWS managed rules and a per-IP rate limit, tuned so
that real uploads pass.

A twine or ``uv publish`` upload is a multipart body holding the README (``long_description``)
and the archive's bytes. READMEs link ``../docs/...`` and embed HTML, which the core rule set's
LFI and XSS body rules take for attacks, and archive bytes can match any body signature. So
the managed rules that inspect the body only count, and one rule of ours blocks on their
labels except on the upload routes (``POST /legacy/``, ``/legacy``, ``/``): AWS's documented
way to exempt a path from some rules of a managed group (rule action override to Count, then
a label match rule with a scope). Everything else (headers, URI, query string) still blocks
everywhere, uploads included. Body size rules count only: uploads are large by nature.

CLOUDFRONT scope: made in us-east-1, in the companion stack (infra/companion.py).
"""

from __future__ import annotations

from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

CORE = "AWSManagedRulesCommonRuleSet"
BAD_INPUTS = "AWSManagedRulesKnownBadInputsRuleSet"
# The body rules of each group, and the label each adds to a request it matches
# (https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html).
BODY_RULES = {
    CORE: {
        "CrossSiteScripting_BODY": "awswaf:managed:aws:core-rule-set:CrossSiteScripting_Body",
        "GenericLFI_BODY": "awswaf:managed:aws:core-rule-set:GenericLFI_Body",
        "GenericRFI_BODY": "awswaf:managed:aws:core-rule-set:GenericRFI_Body",
        "EC2MetaDataSSRF_BODY": "awswaf:managed:aws:core-rule-set:EC2MetaDataSSRF_Body",
    },
    BAD_INPUTS: {
        "JavaDeserializationRCE_BODY": (
            "awswaf:managed:aws:known-bad-inputs:JavaDeserializationRCE_Body"
        ),
        "Log4JRCE_BODY": "awswaf:managed:aws:known-bad-inputs:Log4JRCE_Body",
    },
}
COUNT_ONLY = {CORE: ["SizeRestrictions_BODY"], BAD_INPUTS: []}
UPLOAD_PATHS = ("/legacy/", "/legacy", "/")
RATE_LIMIT = 3000  # requests per 5 minutes per IP


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    count = [*BODY_RULES[name], *COUNT_ONLY[name]]
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
                        name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                    )
                    for rule in count
                ],
            )
        ),
        visibility_config=_visibility(name),
    )


def _path_is(path: str) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="EXACTLY",
            search_string=path,
            text_transformations=[
                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
            ],
        )
    )


def _upload() -> wafv2.CfnWebACL.StatementProperty:
    """``POST`` to one of the upload routes."""
    post = wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(method={}),
            positional_constraint="EXACTLY",
            search_string="POST",
            text_transformations=[
                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
            ],
        )
    )
    paths = wafv2.CfnWebACL.StatementProperty(
        or_statement=wafv2.CfnWebACL.OrStatementProperty(
            statements=[_path_is(path) for path in UPLOAD_PATHS]
        )
    )
    return wafv2.CfnWebACL.StatementProperty(
        and_statement=wafv2.CfnWebACL.AndStatementProperty(statements=[post, paths])
    )


def _body_rules_off_uploads(priority: int) -> wafv2.CfnWebACL.RuleProperty:
    labels = [label for rules in BODY_RULES.values() for label in rules.values()]
    matched = wafv2.CfnWebACL.StatementProperty(
        or_statement=wafv2.CfnWebACL.OrStatementProperty(
            statements=[
                wafv2.CfnWebACL.StatementProperty(
                    label_match_statement=wafv2.CfnWebACL.LabelMatchStatementProperty(
                        scope="LABEL", key=label
                    )
                )
                for label in labels
            ]
        )
    )
    not_upload = wafv2.CfnWebACL.StatementProperty(
        not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=_upload())
    )
    return wafv2.CfnWebACL.RuleProperty(
        name="BodyRulesExceptUploads",
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            and_statement=wafv2.CfnWebACL.AndStatementProperty(statements=[matched, not_upload])
        ),
        visibility_config=_visibility("BodyRulesExceptUploads"),
    )


def web_acl(scope: Construct, construct_id: str) -> wafv2.CfnWebACL:
    return wafv2.CfnWebACL(
        scope,
        construct_id,
        scope="CLOUDFRONT",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility("skypi"),
        rules=[
            _managed(CORE, 0),
            _managed(BAD_INPUTS, 1),
            _body_rules_off_uploads(2),
            wafv2.CfnWebACL.RuleProperty(
                name="RateLimitPerIp",
                priority=3,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=RATE_LIMIT
                    )
                ),
                visibility_config=_visibility("RateLimitPerIp"),
            ),
        ],
    )
