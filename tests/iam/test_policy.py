"""The evaluator against IAM's documented rules (tests/iam/policy.py cites them)."""

from __future__ import annotations

import pytest

from tests.iam.policy import Decision, Request, Statement, Unsupported, evaluate

OBJECTS = "arn:aws:s3:::b/packages/*"


def _allow(**element: object) -> Statement:
    return Statement({"Effect": "Allow", **element})


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policy = [
        _allow(Action="s3:*", Resource="*"),
        Statement({"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": OBJECTS}),
    ]
    assert evaluate(policy, Request("s3:DeleteObject", "arn:aws:s3:::b/packages/x")) is (
        Decision.EXPLICIT_DENY
    )
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/packages/x")) is (
        Decision.ALLOWED
    )


def test_nothing_allowed_is_denied_by_default() -> None:
    policy = [_allow(Action="s3:GetObject", Resource=OBJECTS)]
    assert evaluate(policy, Request("s3:PutObject", "arn:aws:s3:::b/packages/x")) is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/simple/x")) is (
        Decision.IMPLICIT_DENY
    )


def test_star_spans_slashes_and_dots_are_literal() -> None:
    policy = [_allow(Action="s3:DeleteObject", Resource="arn:aws:s3:::b/packages/*.metadata")]
    assert evaluate(policy, Request("s3:DeleteObject", "arn:aws:s3:::b/packages/p/f.whl.metadata"))
    for key in ("packages/p/f.whl", "packages/p/f.whlXmetadata"):
        request = Request("s3:DeleteObject", f"arn:aws:s3:::b/{key}")
        assert evaluate(policy, request) is Decision.IMPLICIT_DENY


def test_actions_match_without_case_resources_with_case() -> None:
    policy = [_allow(Action="S3:getobject", Resource=OBJECTS)]
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/packages/x")) is (
        Decision.ALLOWED
    )
    assert evaluate(policy, Request("s3:GetObject", "arn:aws:s3:::b/Packages/x")) is (
        Decision.IMPLICIT_DENY
    )


def test_not_action_allows_everything_else() -> None:
    policy = [_allow(NotAction="s3:DeleteObject", Resource="*")]
    assert evaluate(policy, Request("s3:GetObject", "x")) is Decision.ALLOWED
    assert evaluate(policy, Request("s3:DeleteObject", "x")) is Decision.IMPLICIT_DENY


def test_leading_keys_condition() -> None:
    condition = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["publisher"]}}
    policy = [_allow(Action="dynamodb:Query", Resource="*", Condition=condition)]
    own = Request("dynamodb:Query", "t", {"dynamodb:LeadingKeys": ["publisher"]})
    other = Request("dynamodb:Query", "t", {"dynamodb:LeadingKeys": ["oidc-token"]})
    assert evaluate(policy, own) is Decision.ALLOWED
    assert evaluate(policy, other) is Decision.IMPLICIT_DENY  # not an explicit deny


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Principal": "*"},
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "*",
            "Condition": {"StringEqualsIfExists": {"s3:prefix": "a"}},
        },
        {"Effect": "Allow", "Action": "s3:GetObject"},
    ],
)
def test_what_it_does_not_implement_is_refused_not_allowed(statement: dict[str, object]) -> None:
    with pytest.raises(Unsupported):
        Statement(statement)
