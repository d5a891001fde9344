"""No grant of the functions' roles is wider than a prefix: no action wildcard, no resource
``*`` where the action takes a resource, no whole-bucket object ARN. (Which grants are needed is
tests/iam/test_grants_are_needed.py; these say how wide each may be.)"""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam.policy import Statement, matches
from tests.iam.template import FUNCTIONS, grants
from tests.iam.test_grants_are_needed import PLACEHOLDERS
from tests.synth import Synth

# Actions that take no resource, so "*" is the only Resource AWS accepts (the Service
# Authorization Reference lists no resource type for them).
RESOURCE_LESS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListStreams"}
BUCKET = "arn:aws:s3:::<bucket>"


def _listed(value: Any) -> list[str]:
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def widenings(statement: Statement) -> list[str]:
    """What in ``statement`` is wider than a least-privilege grant may be."""
    actions = _listed(statement.document.get("Action", []))
    resources = _listed(statement.document.get("Resource", []))
    found = [
        f"NotAction/NotResource {statement.document}"
        for n in ("NotAction", "NotResource")
        if n in statement.document
    ]
    found += [f"action wildcard {a}" for a in actions if "*" in a or "?" in a]
    if "*" in resources and not set(actions) <= RESOURCE_LESS:
        found.append(f"resource * for {sorted(set(actions) - RESOURCE_LESS)}")
    for resource in resources:
        if matches(resource, f"{BUCKET}/any/key") and resource.startswith(f"{BUCKET}/*"):
            found.append(f"every object of the bucket: {resource}")
    return found


@pytest.mark.parametrize("function", list(FUNCTIONS))
def test_no_grant_is_wider_than_a_prefix(synth: Synth, function: str) -> None:
    statements = [g.statement for g in grants(synth.template, function, PLACEHOLDERS)]
    assert [w for s in statements for w in widenings(s)] == []


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        (
            {"Effect": "Allow", "Action": "s3:*", "Resource": f"{BUCKET}/packages/*"},
            ["action wildcard s3:*"],
        ),
        (
            {"Effect": "Allow", "Action": "s3:Get*", "Resource": f"{BUCKET}/packages/*"},
            ["action wildcard s3:Get*"],
        ),
        (
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"},
            [f"every object of the bucket: {BUCKET}/*"],
        ),
        (
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            ["resource * for ['s3:GetObject']"],
        ),
        ({"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"}, []),
        ({"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{BUCKET}/site/*"}, []),
    ],
)
def test_a_grant_widened_to_a_wildcard_is_caught(
    statement: dict[str, Any], expected: list[str]
) -> None:
    assert widenings(Statement(statement)) == expected
