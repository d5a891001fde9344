"""The view Lambda's role, evaluated (tests/iam/policy.py) on the calls its handler makes and on
their near misses: its own schedule group only, the scheduler's role passed to Scheduler only,
the view families written and the index's own objects only read. That each of its grants is
needed is tests/iam/test_grants_are_needed.py's (the view scenario records its calls)."""

from __future__ import annotations

import pytest

from tests.iam.policy import Decision, Request, evaluate
from tests.iam.template import ACCOUNT, REGION, Deployment, grants
from tests.iam.test_grants_are_needed import PLACEHOLDERS
from tests.synth import Synth

DEPLOYMENT: Deployment = PLACEHOLDERS
BUCKET = f"arn:aws:s3:::{DEPLOYMENT.bucket}"
SCHEDULES = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule"
MINE = f"{SCHEDULES}/{DEPLOYMENT.schedule_group}/skypi-view-refresh"
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/{DEPLOYMENT.scheduler_role}"
SELF = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{DEPLOYMENT.view_function}"
TO_SCHEDULER = {"iam:PassedToService": ["scheduler.amazonaws.com"]}

ALLOWED = [
    Request("scheduler:CreateSchedule", MINE),
    Request("scheduler:UpdateSchedule", MINE),
    Request("iam:PassRole", SCHEDULER_ROLE, TO_SCHEDULER),
    Request("s3:GetObject", f"{BUCKET}/simple/foo/index.json"),  # a private name's page
    Request("s3:GetObject", f"{BUCKET}/namespaces/records.json"),
    Request("s3:GetObject", f"{BUCKET}/views/safe/policy.json"),
    Request("s3:GetObject", f"{BUCKET}/osv/PyPI.json"),
    Request("s3:PutObject", f"{BUCKET}/views/safe/simple/foo/index.json.gz"),
    Request("s3:PutObject", f"{BUCKET}/views/safe/upstream/foo.json"),
    Request("s3:PutObject", f"{BUCKET}/views/safe/files/foo/foo-1.0.tar.gz"),
    Request("s3:DeleteObject", f"{BUCKET}/views/safe/simple/foo/index.html"),
    Request("s3:PutObject", f"{BUCKET}/views/due.json"),  # when each page is due
    Request("s3:DeleteObject", f"{BUCKET}/views/safe/files/foo/foo-1.0.tar.gz"),  # purged
    Request("s3:ListBucket", BUCKET),
    Request("lambda:InvokeFunction", SELF),  # a background fill, sent to itself
    Request("s3:AbortMultipartUpload", f"{BUCKET}/views/safe/files/foo/foo-1.0.tar.gz"),
]  # fmt: skip
DENIED = [
    Request("scheduler:CreateSchedule", f"{SCHEDULES}/default/skypi-view-refresh"),
    Request("scheduler:CreateSchedule", f"{SCHEDULES}/another-group/x"),
    Request("scheduler:DeleteScheduleGroup", f"{SCHEDULES}-group/{DEPLOYMENT.schedule_group}"),
    Request("iam:PassRole", SCHEDULER_ROLE, {"iam:PassedToService": ["lambda.amazonaws.com"]}),
    Request("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin", TO_SCHEDULER),
    Request("s3:PutObject", f"{BUCKET}/simple/foo/index.json"),  # never a private page
    Request("s3:PutObject", f"{BUCKET}/packages/foo/foo-1.0.tar.gz"),
    Request("s3:GetObject", f"{BUCKET}/packages/foo/foo-1.0.tar.gz"),
    Request("s3:PutObject", f"{BUCKET}/views/safe/policy.json"),  # the operator's
    Request("s3:PutObject", f"{BUCKET}/osv/PyPI.json"),
    Request("s3:GetObject", f"{BUCKET}/auth/tokens.json"),
    Request("s3:DeleteObject", f"{BUCKET}/packages/foo/foo-1.0.tar.gz"),
    Request("lambda:InvokeFunction", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:x"),
    Request("lambda:InvokeFunction", f"{SELF}-other"),
    Request("s3:AbortMultipartUpload", f"{BUCKET}/packages/foo/foo-1.0.tar.gz"),
    Request("s3:AbortMultipartUpload", f"{BUCKET}/views/safe/simple/foo/index.json"),
]  # fmt: skip


@pytest.mark.parametrize("request_", ALLOWED, ids=str)
def test_the_view_role_allows_what_the_view_lambda_does(synth: Synth, request_: Request) -> None:
    statements = [g.statement for g in grants(synth.template, "view", DEPLOYMENT)]
    assert evaluate(statements, request_) is Decision.ALLOWED


@pytest.mark.parametrize("request_", DENIED, ids=str)
def test_the_view_role_refuses_its_near_misses(synth: Synth, request_: Request) -> None:
    statements = [g.statement for g in grants(synth.template, "view", DEPLOYMENT)]
    assert evaluate(statements, request_) is not Decision.ALLOWED
