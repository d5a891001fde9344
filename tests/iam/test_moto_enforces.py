"""The same grants, enforced by moto itself: the template's policy documents become a role in
moto's IAM, the functions assume it, and moto's authentication is switched on
(https://docs.getmoto.org/en/latest/docs/iam.html: ``INITIAL_NO_AUTH_ACTION_COUNT``, here set
through the server's ``/moto-api/reset-auth``). moto 5.2.5 checks S3 per key and SQS per queue
ARN, DynamoDB and CloudFront only by action, a copy's source and presigned requests not at all,
KeyValueStore not at all: the evaluator (test_calls_are_granted.py) covers what it does not."""

from __future__ import annotations

import json
import logging
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from skypi.api import handler as api_handler
from skypi.indexer import handler as indexer_handler
from skypi.local.emulator import Poller
from tests.apigw import upload_event
from tests.conftest import basic
from tests.dists import wheel_bytes, wheel_name
from tests.emulated import CREDENTIALS
from tests.iam.conftest import Stack
from tests.iam.template import resolved_documents

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
    ],
}


# What moto asks for that AWS does not, stated once: moto checks a batch delete as its own
# action, where AWS authorizes DeleteMessageBatch as sqs:DeleteMessage (the SQS guide's
# "Amazon SQS API permissions: Actions and resource reference",
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html).
def _moto_batch_delete(queue_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sqs:DeleteMessageBatch", "Resource": queue_arn}
        ],
    }


# moto matches a DynamoDB request against Resource "*" whatever the table (it checks DynamoDB
# by action only), so a grant naming the table's ARN never matches there. The table-scoped
# grants are checked by the evaluator; here the API may use its token table's actions anywhere.
MOTO_DYNAMODB_BY_ACTION = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:UpdateItem"], "Resource": "*"}
    ],
}


def _reset_auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=count.encode(),
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@contextmanager
def enforced(endpoint: str) -> Iterator[None]:
    """moto authenticates and authorizes every request in the block."""
    _reset_auth(endpoint, "0")
    try:
        yield
    finally:
        _reset_auth(endpoint, "inf")


def _role(stack: Stack, function: str, strip: str | None = None, extra: Any = None) -> str:
    """A role in moto's IAM with the template's policies of ``function`` (less any resource
    ending in ``strip``); returns its ARN."""
    iam = boto3.client("iam", endpoint_url=stack.endpoint, **CREDENTIALS)  # type: ignore[call-overload]
    name = f"{function}-{uuid.uuid4().hex[:8]}"
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"][
        "Arn"
    ]
    documents = resolved_documents(stack.synth.template, function, stack.deployment)
    for index, (_, document) in enumerate(documents):
        for statement in document["Statement"]:
            resources = statement["Resource"]
            if strip and isinstance(resources, list):
                statement["Resource"] = [r for r in resources if not r.endswith(strip)]
        iam.put_role_policy(
            RoleName=name, PolicyName=f"p{index}", PolicyDocument=json.dumps(document)
        )
    if extra:
        iam.put_role_policy(RoleName=name, PolicyName="moto", PolicyDocument=json.dumps(extra))
    return arn


def _assume(stack: Stack, monkeypatch: pytest.MonkeyPatch, arn: str) -> Any:
    """The role's credentials in the environment, as Lambda gives them to the function."""
    sts = boto3.client("sts", endpoint_url=stack.endpoint, **CREDENTIALS)  # type: ignore[call-overload]
    credentials = sts.assume_role(RoleArn=arn, RoleSessionName="skypi")["Credentials"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    monkeypatch.setattr(indexer_handler, "_indexer", None)
    monkeypatch.setattr(api_handler, "_mangum", None)
    return boto3.client(
        "sqs",
        endpoint_url=stack.endpoint,
        region_name="us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _drop_in(stack: Stack, project: str) -> str:
    key = f"packages/{project}/{wheel_name(project, '1.0')}"
    stack.aws.drop(key, wheel_bytes(project, "1.0"))
    return key


@pytest.mark.parametrize("strip", [None, "/site/*"])
def test_the_indexer_as_its_role(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    strip: str | None,
) -> None:
    project = "enforced" if strip is None else "stripped"
    _drop_in(stack, project)
    queue_arn = stack.deployment.queue_arn(stack.deployment.queue)
    role = _role(stack, "indexer", strip, _moto_batch_delete(queue_arn))
    sqs = _assume(stack, monkeypatch, role)
    poller = Poller(sqs, stack.aws.resources, indexer_handler.handler, wait_seconds=0)
    with enforced(stack.endpoint), caplog.at_level(logging.ERROR):
        handled = poller.poll_once()
    listed = b"" if strip else stack.aws.page(f"site/project/{project}/index.html")
    if strip is None:
        assert handled == 1
        assert project.encode() in listed
    else:  # the pages for people were written by a role that may not: moto refuses it
        assert handled == 0
        assert "AccessDenied" in caplog.text
        with pytest.raises(KeyError):
            stack.aws.page(f"site/project/{project}/index.html")


@pytest.mark.parametrize("strip", [None, "/site/*"])
def test_an_api_upload_as_its_role(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    strip: str | None,
) -> None:
    from skypi.core.tokens import TokenRecord, new_token

    token = new_token()
    stack.aws.tokens.add(TokenRecord.create(token, name="t", scopes={"upload"}, projects=None))
    data = wheel_bytes("uploaded", "1.0")
    event = upload_event(
        data, wheel_name("uploaded", "1.0"), "uploaded", "1.0", basic(token)["Authorization"]
    )
    _assume(stack, monkeypatch, _role(stack, "api", strip, MOTO_DYNAMODB_BY_ACTION))
    with enforced(stack.endpoint), caplog.at_level(logging.ERROR):
        response = api_handler.handler(event, _context())
    if strip is None:
        assert response["statusCode"] == 200, response
        assert b"uploaded" in stack.aws.page("site/project/uploaded/index.html")
    else:
        assert response["statusCode"] >= 500, response
        assert "AccessDenied" in caplog.text


def _context() -> Any:
    from skypi.local.emulator import LambdaContext

    return LambdaContext(function_name="skypi-api")


@pytest.mark.parametrize("strip", [None, "/held/*"])
def test_an_api_quarantine_as_its_role(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    strip: str | None,
) -> None:
    """PEP 792 through the admin API as its role: the edge's record (the KeyValueStore is
    emulated, and its calls checked by the evaluator), the held files and the page (S3, per
    key), the invalidation (CloudFront, by action). With the held files' grant stripped the
    page cannot be written, and the record written before it stays: the files are refused."""
    from skypi.core.keys import quarantine_record_key
    from skypi.core.tokens import TokenRecord, new_token
    from tests.apigw import http_event

    _drop_in(stack, "malware")
    stack.aws.poller.drain()
    token = new_token()
    stack.aws.tokens.add(TokenRecord.create(token, name="a", scopes={"admin"}, projects=None))
    headers = {**basic(token), "content-type": "application/json"}
    body = json.dumps({"status": "quarantined", "reason": "reported"}).encode()
    event = http_event("POST", "/api/projects/malware/status", headers=headers, body=body)
    _assume(stack, monkeypatch, _role(stack, "api", strip, MOTO_DYNAMODB_BY_ACTION))
    with enforced(stack.endpoint), caplog.at_level(logging.ERROR):
        response = api_handler.handler(event, _context())
    assert quarantine_record_key("malware") in stack.kvs.items
    page = stack.aws.page("simple/malware/index.json")
    if strip is None:
        assert response["statusCode"] == 200, response
        assert b'"quarantined"' in page
    else:
        assert response["statusCode"] >= 500, response
        assert "AccessDenied" in caplog.text
        assert b'"quarantined"' not in page
