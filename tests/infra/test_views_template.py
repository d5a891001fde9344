"""The views on AWS, pinned on the synthesized template: the ``/view/*`` behaviour and its
origin group (the bucket, then the view Lambda's function URL), the URL's origin access
control, the function's limits, the schedule group and the two roles (docs/views.md)."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from infra.cdn import (
    VIEW_BUCKET_ORIGIN_ID,
    VIEW_FUNCTION_ORIGIN_ID,
    VIEW_PATH,
)
from infra.views import (
    HANDLER,
    ORIGIN_TIMEOUT_VARIABLE,
    SCHEDULE_GROUP_VARIABLE,
    SCHEDULER_ROLE_VARIABLE,
)
from skypi.core import keys
from skypi.core.constants import INDEX_URL_VARIABLE
from tests.infra.conftest import Synth
from tests.infra.test_grants_cover_writes import _granted


def _one(synth: Synth, kind: str, prefix: str) -> tuple[str, dict[str, Any]]:
    [found] = [(k, r) for k, r in synth.resources(kind).items() if k.startswith(prefix)]
    return found


def _distribution(synth: Synth) -> dict[str, Any]:
    [distribution] = synth.resources("AWS::CloudFront::Distribution").values()
    return dict(distribution["Properties"]["DistributionConfig"])


def _view_behaviour(synth: Synth) -> dict[str, Any]:
    config = _distribution(synth)
    [behaviour] = [b for b in config["CacheBehaviors"] if b["PathPattern"] == VIEW_PATH]
    return dict(behaviour)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in synth.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _function(synth: Synth) -> tuple[str, dict[str, Any]]:
    return _one(synth, "AWS::Lambda::Function", "ViewsFunction")


def _role(synth: Synth) -> str:
    _, function = _function(synth)
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def test_a_view_miss_fails_over_from_the_bucket_to_the_view_lambda(synth: Synth) -> None:
    """S3 answers a key it does not have with 404 to a caller that may list the bucket, 403 to
    one that may not; both fail over. CloudFront fails over GET, HEAD and OPTIONS only, and
    takes an origin group only on a behaviour that allows no other method."""
    config = _distribution(synth)
    behaviour = _view_behaviour(synth)
    groups = {g["Id"]: g for g in config["OriginGroups"]["Items"]}
    group = groups[behaviour["TargetOriginId"]]
    members = [m["OriginId"] for m in group["Members"]["Items"]]
    assert members == [VIEW_BUCKET_ORIGIN_ID, VIEW_FUNCTION_ORIGIN_ID]
    assert sorted(group["FailoverCriteria"]["StatusCodes"]["Items"]) == [403, 404]
    assert sorted(behaviour["AllowedMethods"]) == ["GET", "HEAD", "OPTIONS"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    origins = {o["Id"]: o for o in config["Origins"]}
    bucket, main = origins[VIEW_BUCKET_ORIGIN_ID], origins["bucket"]
    assert bucket["DomainName"] == main["DomainName"]  # the index's bucket, same OAC
    assert bucket["OriginAccessControlId"] == main["OriginAccessControlId"]
    url_id, _ = _one(synth, "AWS::Lambda::Url", "ViewsFunction")
    view = origins[VIEW_FUNCTION_ORIGIN_ID]
    assert json.dumps({"Fn::GetAtt": [url_id, "FunctionUrl"]}) in json.dumps(view["DomainName"])
    assert view["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    # the most CloudFront waits without a quota increase; the function is told it
    assert view["CustomOriginConfig"]["OriginReadTimeout"] == 60
    variables = _function(synth)[1]["Properties"]["Environment"]["Variables"]
    assert variables[ORIGIN_TIMEOUT_VARIABLE] == "60"


def test_the_function_url_takes_only_requests_cloudfront_signed(synth: Synth) -> None:
    """AWS_IAM, reached through an origin access control for Lambda that signs every request
    (a viewer's Authorization never arrives: the edge checked it); new function URLs need
    both lambda:InvokeFunctionUrl and lambda:InvokeFunction ("Control access to Lambda
    function URLs"), each for this distribution only."""
    url_id, url = _one(synth, "AWS::Lambda::Url", "ViewsFunction")
    assert url["Properties"]["AuthType"] == "AWS_IAM"
    assert url["Properties"]["InvokeMode"] == "BUFFERED"
    view = next(o for o in _distribution(synth)["Origins"] if o["Id"] == VIEW_FUNCTION_ORIGIN_ID)
    oac_id = view["OriginAccessControlId"]["Fn::GetAtt"][0]
    oac = synth.resources("AWS::CloudFront::OriginAccessControl")[oac_id]
    config = oac["Properties"]["OriginAccessControlConfig"]
    assert config["OriginAccessControlOriginType"] == "lambda"
    assert (config["SigningBehavior"], config["SigningProtocol"]) == ("always", "sigv4")
    [distribution_id] = synth.resources("AWS::CloudFront::Distribution")
    permissions = [
        p["Properties"]
        for p in synth.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [url_id, "FunctionArn"]}
    ]
    assert sorted(p["Action"] for p in permissions) == [
        "lambda:InvokeFunction",
        "lambda:InvokeFunctionUrl",
    ]
    for permission in permissions:
        assert permission["Principal"] == "cloudfront.amazonaws.com"
        assert {"Ref": distribution_id} in permission["SourceArn"]["Fn::Join"][1]
    invoke = next(p for p in permissions if p["Action"] == "lambda:InvokeFunction")
    assert invoke["InvokedViaFunctionUrl"] is True


def test_the_view_lambda_is_bounded(synth: Synth) -> None:
    _, function = _function(synth)
    properties = function["Properties"]
    assert properties["Handler"] == HANDLER == "skypi.api.viewhandler.handler"
    assert properties["Timeout"] == 900  # a scheduled run; a URL answer bounds itself to 60 s
    assert properties["MemorySize"] == 1024
    # a file is fetched into the bucket up to 64 MB (larger ones go to upstream): Lambda's
    # default /tmp (512 MB) holds it
    assert "EphemeralStorage" not in properties
    assert "ReservedConcurrentExecutions" not in properties  # none unless asked (test_regions)
    variables = properties["Environment"]["Variables"]
    group_id, _ = _one(synth, "AWS::Scheduler::ScheduleGroup", "ViewsSchedules")
    role_id, _ = _one(synth, "AWS::IAM::Role", "ViewsSchedulerRole")
    [bucket_id] = [k for k in synth.resources("AWS::S3::Bucket") if k.startswith("StorageIndex")]
    assert variables["SKYPI_BUCKET"] == {"Ref": bucket_id}
    assert variables[SCHEDULE_GROUP_VARIABLE] == {"Ref": group_id}
    assert variables[SCHEDULER_ROLE_VARIABLE] == {"Fn::GetAtt": [role_id, "Arn"]}
    # the distribution's own domain would make it depend on itself through the URL
    assert INDEX_URL_VARIABLE not in variables


def test_the_view_role_has_the_view_families_of_the_key_layout_and_no_more(synth: Synth) -> None:
    granted = _granted(synth, "ViewsFunction")
    actions = {"read": "s3:GetObject", "write": "s3:PutObject", "delete": "s3:DeleteObject"}
    for access, action in actions.items():
        assert sorted(p for p in granted.get(action, []) if p) == sorted(
            keys.grants(keys.VIEW, access)
        ), access
    assert granted["s3:ListBucket"] == [""]  # the bucket itself: a HEAD's 404, not 403
    # a background fill's multipart upload, aborted when it fails: cached files only
    multipart = ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    for action in multipart:
        assert (
            granted[action] == list(keys.grants(keys.VIEW, "multipart")) == [keys.VIEW_FILE.grant]
        )
    object_actions = {a for a, patterns in granted.items() if any(patterns)}
    assert object_actions == {*actions.values(), *multipart}
    policy = keys.view_policy_key("safe")
    assert not any(fnmatchcase(policy, p) for p in granted["s3:PutObject"])  # the operator's
    assert not any(fnmatchcase(keys.OSV_KEY, p) for p in granted["s3:PutObject"])
    private = keys.page_key("foo", "json")
    assert any(fnmatchcase(private, p) for p in granted["s3:GetObject"])  # a private name wins
    assert not any(fnmatchcase(private, p) for p in granted["s3:PutObject"])
    assert not any(p.startswith(keys.PACKAGES_PREFIX) for ps in granted.values() for p in ps)


def test_the_view_lambda_schedules_in_its_group_only(synth: Synth) -> None:
    """One-shot schedules in its own group (created, or updated when it is there), passing
    only the role Scheduler assumes, and only to Scheduler."""
    group_id, _ = _one(synth, "AWS::Scheduler::ScheduleGroup", "ViewsSchedules")
    role_id, _ = _one(synth, "AWS::IAM::Role", "ViewsSchedulerRole")
    statements = _statements(synth, _role(synth))
    scheduling = [
        s for s in statements if any(a.startswith("scheduler:") for a in _listed(s["Action"]))
    ]
    [schedules] = scheduling
    assert sorted(_listed(schedules["Action"])) == [
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
    ]
    resource = json.dumps(schedules["Resource"])
    assert json.dumps({"Ref": group_id}) in resource
    assert resource.endswith('"/*"]]}')  # schedule/<group>/*: no other group's
    [passing] = [s for s in statements if "iam:PassRole" in _listed(s["Action"])]
    assert passing["Resource"] == {"Fn::GetAtt": [role_id, "Arn"]}
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    others = {a for s in statements for a in _listed(s["Action"])} - {
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "iam:PassRole",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "s3:AbortMultipartUpload",  # a background fill's (the view families test)
        "s3:ListMultipartUploadParts",
        "lambda:InvokeFunction",  # itself only (the invoke-itself test)
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        *QUEUE_SENDS,
    }
    assert others == set()


QUEUE_SENDS = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}


def test_the_view_lambda_invalidates_through_the_queue_only(synth: Synth) -> None:
    """The files it deletes leave CloudFront through the invalidation queue, which the
    invalidator (the one with CreateInvalidation) drains: it may send to that queue only, and
    calls CloudFront itself for nothing."""
    queue_id, _ = _one(synth, "AWS::SQS::Queue", "InvalidationsPending")
    statements = _statements(synth, _role(synth))
    sending = [s for s in statements if QUEUE_SENDS & set(_listed(s["Action"]))]
    assert [s["Resource"] for s in sending] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    assert not [a for s in statements for a in _listed(s["Action"]) if a.startswith("cloudfront")]
    _, function = _function(synth)
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["SKYPI_INVALIDATION_QUEUE_URL"] == {"Ref": queue_id}
    assert "SKYPI_DISTRIBUTION_ID" not in variables


def test_a_policy_or_osv_data_written_invokes_the_view_lambda(synth: Synth) -> None:
    """Whoever writes them (``skypi view ... --bucket``, ``aws s3 cp``), the bucket invokes the
    view function for a view's policy and the OSV data, and for nothing else of views/."""
    function_id, _ = _function(synth)
    [notifications] = synth.resources("Custom::S3BucketNotifications").values()
    config = notifications["Properties"]["NotificationConfiguration"]
    mine = [
        c for c in config.get("LambdaFunctionConfigurations", [])
        if c["LambdaFunctionArn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]  # fmt: skip
    filters = sorted(
        tuple(sorted((r["Name"], r["Value"]) for r in c["Filter"]["Key"]["FilterRules"]))
        for c in mine
    )
    assert filters == [
        (("prefix", "osv/"), ("suffix", ".json")),
        (("prefix", "views/"), ("suffix", "/policy.json")),
    ]
    assert all(c["Events"] == ["s3:ObjectCreated:*"] for c in mine)


def test_the_scheduler_may_only_invoke_the_view_lambda(synth: Synth) -> None:
    """Its trust: EventBridge Scheduler, for this account's schedules of this group only (the
    confused deputy); its one grant: invoking the view function."""
    function_id, _ = _function(synth)
    group_id, _ = _one(synth, "AWS::Scheduler::ScheduleGroup", "ViewsSchedules")
    role_id, role = _one(synth, "AWS::IAM::Role", "ViewsSchedulerRole")
    [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trust["Condition"]["ArnEquals"] == {"aws:SourceArn": {"Fn::GetAtt": [group_id, "Arn"]}}
    assert _statements(synth, role_id) == [
        {
            "Action": "lambda:InvokeFunction",
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [function_id, "Arn"]},
        }
    ]


def test_view_pages_are_cached_as_pages_are(synth: Synth) -> None:
    """A stored view page carries s-maxage=2 (its family is rewritten in place), a cached
    file a year: one cache policy honours both; a page remade by a schedule is at the edge
    within 2 s, with no invalidation. Pages vary on Accept and Accept-Encoding."""
    config = _distribution(synth)
    simple = next(b for b in config["CacheBehaviors"] if b["PathPattern"] == "/simple/*")
    behaviour = _view_behaviour(synth)
    assert behaviour["CachePolicyId"] == simple["CachePolicyId"]
    assert behaviour["ResponseHeadersPolicyId"] == simple["ResponseHeadersPolicyId"]
    assert keys.VIEW_PAGE.revalidate
    assert not keys.VIEW_FILE.revalidate


def test_the_view_lambda_may_invoke_itself_only_through_a_policy_it_does_not_depend_on(
    synth: Synth,
) -> None:
    """A background fill is an asynchronous invocation of the function by itself. The grant
    names the function's own ARN, so it cannot be in the role's default policy: the function
    depends on that one (CloudFormation would find a circular dependency); it is a policy of
    its own, which depends on the function, never the reverse."""
    function_id, function = _function(synth)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    invoking = {
        policy_id: policy
        for policy_id, policy in synth.resources("AWS::IAM::Policy").items()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        and any(
            "lambda:InvokeFunction" in _listed(s["Action"])
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
        )
    }
    [(policy_id, policy)] = invoking.items()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Resource"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert policy_id not in _listed(function.get("DependsOn", []))
    depends = json.dumps(function)
    assert policy_id not in depends


def test_a_fill_left_incomplete_is_removed_by_the_bucket_lifecycle(synth: Synth) -> None:
    """A fill that dies part-way (its run out of time) leaves an incomplete multipart upload:
    the bucket's lifecycle rule aborts it (Amazon S3 User Guide, "Configuring a bucket
    lifecycle configuration to delete incomplete multipart uploads")."""
    [bucket] = [
        r for k, r in synth.resources("AWS::S3::Bucket").items() if k.startswith("StorageIndex")
    ]
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    aborting = [r for r in rules if r.get("Status") == "Enabled" and "Prefix" not in r]
    assert any(r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] <= 7 for r in aborting)
