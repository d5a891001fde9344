"""A role's S3 grants read from the synthesized template, and the S3 calls they do not cover,
matched the way IAM matches resource ARNs (``*`` spans ``/``): one reader for the grant
checks of tests/infra and the rehearsal (tests/iam evaluates whole policies on moto)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

# The IAM action of each S3 operation (the S3 API reference's "Permissions" of each call).
S3_ACTION = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "GetObjectAttributes": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListParts": "s3:ListMultipartUploadParts",
}

Grants = dict[str, list[str]]  # action -> object key patterns ("" for the bucket itself)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def key_pattern(resource: Any) -> str:
    """``{"Fn::Join": ["", [<bucket arn>, "/simple/*"]]}`` -> ``simple/*``; a bucket ARN -> ""."""
    if isinstance(resource, dict) and "Fn::Join" in resource:
        tail = resource["Fn::Join"][1][-1]
        return tail.lstrip("/") if isinstance(tail, str) else ""
    return ""


def s3_grants(template: Mapping[str, Any], role: Callable[[list[Any]], bool]) -> Grants:
    """What the Allow statements of the policies whose ``Roles`` satisfy ``role`` grant."""
    granted: Grants = {}
    for policy in template["Resources"].values():
        if policy["Type"] != "AWS::IAM::Policy" or not role(policy["Properties"]["Roles"]):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Effect") != "Allow":
                continue
            for action in _listed(statement["Action"]):
                if not action.startswith("s3:"):  # another service's (a schedule's ARN)
                    continue
                for resource in _listed(statement["Resource"]):
                    granted.setdefault(action, []).append(key_pattern(resource))
    return granted


def allowed(granted: Grants, action: str, key: str) -> bool:
    """A call without a key (a listing) needs the bucket; one with a key, a matching pattern."""
    patterns = granted.get(action, [])
    return "" in patterns if not key else any(fnmatchcase(key, p) for p in patterns if p)


def denied(calls: Iterable[tuple[str, str]], granted: Grants) -> list[str]:
    """``action key`` of each call (an S3 operation and its key) the grants do not cover."""
    return [
        f"{S3_ACTION[operation]} {key}".rstrip()
        for operation, key in calls
        if not allowed(granted, S3_ACTION[operation], "" if operation.startswith("List") else key)
    ]
