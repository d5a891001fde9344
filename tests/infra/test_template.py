"""The stack's security and wiring, pinned on the synthesized template (aws_cdk.assertions),
and cfn-lint over it. Every test shares the one synthesis of ``conftest.synth``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template  # conftest has pointed jsii at Node 24

from infra.cdn import (
    API_ORIGIN_ID,
    BUCKET_ORIGIN_ID,
    BUCKET_PATHS,
    MAX_FUNCTION_BYTES,
    PEOPLE_ORIGIN_ID,
    VIEW_BUCKET_ORIGIN_ID,
    VIEW_FUNCTION_ORIGIN_ID,
    VIEW_PATH,
    edge_source,
    view_edge_source,
)
from skypi.core.constants import INDEX_URL_VARIABLE
from skypi.core.edge import READ_PREFIXES
from skypi.core.filenames import DISTRIBUTION_SUFFIXES
from skypi.core.http import cache_control_for_key
from tests.infra.conftest import ROOT, Synth

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


@pytest.fixture(scope="module")
def template(synth: Synth) -> Template:
    return Template.from_json(synth.template)


def _only(synth: Synth, kind: str, **match: Any) -> tuple[str, dict[str, Any]]:
    found = [
        (k, r)
        for k, r in synth.resources(kind).items()
        if all(r["Properties"].get(p) == v for p, v in match.items())
    ]
    assert len(found) == 1, (kind, match, [k for k, _ in found])
    return found[0]


def _statements(synth: Synth, role_fragment: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to the role whose logical id contains ``role_fragment``."""
    statements = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        roles = json.dumps(policy["Properties"]["Roles"])
        if role_fragment in roles:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, role_fragment
    return statements


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


def _resources(statement: dict[str, Any]) -> str:
    return json.dumps(statement["Resource"])


# -- storage ------------------------------------------------------------------------------


def test_bucket_is_private_versioned_encrypted_and_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "s3/"}),
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                            "Status": "Enabled",
                        }
                    )
                ]
            },
        },
    )
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain"})


def test_every_bucket_refuses_plain_http(synth: Synth) -> None:
    policies = synth.resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2  # the index and its access logs
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_a_missing_page_for_people_is_asked_of_the_api(synth: Synth) -> None:
    """/project/<name>/ that the bucket lacks fails over to the API, which answers 404 with the
    page for people (tests/test_not_found.py). Custom error responses cannot do that: they are
    the whole distribution's, keyed by the origin's status only ("Custom error pages and error
    caching", CloudFront Developer Guide), so they would replace the API's own 404 bodies and
    the plain 404 pip and uv get; and a CloudFront Function's own answer goes to the viewer
    without the cache or an origin ("Determine function purpose"), so none applies to it."""
    config = _distribution(synth)
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    groups = {g["Id"]: g for g in config["OriginGroups"]["Items"]}
    group = groups[behaviors["/project/*"]["TargetOriginId"]]
    members = [m["OriginId"] for m in group["Members"]["Items"]]
    assert members == [PEOPLE_ORIGIN_ID, API_ORIGIN_ID]
    assert group["FailoverCriteria"]["StatusCodes"]["Items"] == [404]
    # CloudFront takes an origin group only on a behaviour that allows no write method
    assert sorted(behaviors["/project/*"]["AllowedMethods"]) == ["GET", "HEAD", "OPTIONS"]
    for path in ("/simple/*", "/packages/*"):  # pip's and uv's misses stay the bucket's own
        assert behaviors[path]["TargetOriginId"] == BUCKET_ORIGIN_ID
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == API_ORIGIN_ID


def test_the_pages_functions_know_the_index_address(synth: Synth) -> None:
    """The API and the indexer write https://<CloudFront's domain> into the setup lines of the
    pages for people; the distribution depends on the HTTP API, not the function: no cycle."""
    distribution, _ = _only(synth, "AWS::CloudFront::Distribution")
    address = {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]}
    given = {
        name: function["Properties"]["Environment"]["Variables"][INDEX_URL_VARIABLE]
        for name, function in synth.resources("AWS::Lambda::Function").items()
        if INDEX_URL_VARIABLE in function["Properties"].get("Environment", {}).get("Variables", {})
    }
    assert sorted(n.startswith("ApiFunction") for n in given) == [False, True], given
    assert sorted(n.startswith("IndexerFunction") for n in given) == [False, True], given
    assert all(value == address for value in given.values())


def test_only_cloudfront_reads_the_bucket_through_origin_access_control(synth: Synth) -> None:
    configs = [
        oac["Properties"]["OriginAccessControlConfig"]
        for oac in synth.resources("AWS::CloudFront::OriginAccessControl").values()
    ]
    [config] = [c for c in configs if c["OriginAccessControlOriginType"] == "s3"]
    assert config["SigningBehavior"] == "always"
    distribution = next(iter(synth.resources("AWS::CloudFront::Distribution").values()))
    s3_origins = [
        o
        for o in distribution["Properties"]["DistributionConfig"]["Origins"]
        if "S3OriginConfig" in o
    ]
    # the bucket, and the bucket again as the first origin of /project/*'s and /view/*'s
    # origin groups
    assert sorted(o["Id"] for o in s3_origins) == sorted(
        [BUCKET_ORIGIN_ID, PEOPLE_ORIGIN_ID, VIEW_BUCKET_ORIGIN_ID]
    )
    assert len({json.dumps(o["OriginAccessControlId"]) for o in s3_origins}) == 1
    assert len({json.dumps(o["DomainName"]) for o in s3_origins}) == 1
    for origin in s3_origins:
        assert origin["S3OriginConfig"].get("OriginAccessIdentity", "") == ""
    index_policy = next(
        p for p in synth.resources("AWS::S3::BucketPolicy").values() if "Index" in json.dumps(p)
    )
    allows = [
        s
        for s in index_policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert allows
    for statement in allows:  # nobody but this distribution
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert "AWS:SourceArn" in json.dumps(statement["Condition"])
        assert set(_actions(statement)) <= {"s3:GetObject", "s3:ListBucket"}


# -- indexer ------------------------------------------------------------------------------


def test_notifications_cover_distributions_only(synth: Synth) -> None:
    _, notifications = _only(synth, "Custom::S3BucketNotifications")
    queues = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    seen = set()
    for config in queues:
        rules = {r["Name"]: r["Value"] for r in config["Filter"]["Key"]["FilterRules"]}
        assert rules["prefix"] == "packages/"  # the indexer's page writes never trigger it
        assert rules["suffix"] in DISTRIBUTION_SUFFIXES  # nor its own .metadata files
        seen.add((config["Events"][0], rules["suffix"]))
    assert seen == {
        (event, suffix)
        for event in ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
        for suffix in DISTRIBUTION_SUFFIXES
    }


def test_events_queue_has_a_dead_letter_queue_and_partial_batch_failures(
    template: Template, synth: Synth
) -> None:
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "RedrivePolicy": {"deadLetterTargetArn": Match.any_value(), "maxReceiveCount": 5},
            "SqsManagedSseEnabled": True,
            "VisibilityTimeout": 720,
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"BatchSize": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"]},
    )
    for policy in synth.resources("AWS::SQS::QueuePolicy").values():
        assert "aws:SecureTransport" in json.dumps(policy)


def test_alarms_on_dead_letters_errors_and_conflicts(synth: Synth) -> None:
    alarms = list(synth.resources("AWS::CloudWatch::Alarm").values())
    metrics = {(a["Properties"].get("Namespace"), a["Properties"]["MetricName"]) for a in alarms}
    assert metrics == {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/Lambda", "Errors"),
        ("skypi", "Conflicts"),
    }
    queues = [
        json.dumps(a["Properties"]["Dimensions"])
        for a in alarms
        if a["Properties"]["Namespace"] == "AWS/SQS"
    ]
    assert any("IndexerDeadLetters" in q for q in queues)
    assert any("InvalidationsDeadLetters" in q for q in queues)


def _pending_arn() -> str:
    return '{"Fn::Join": ["", [{"Fn::GetAtt": ["StorageIndexC55AD86F", "Arn"]}, "/pending/*"]]}]'


def test_indexer_cannot_delete_distribution_files(synth: Synth) -> None:
    statements = _statements(synth, "IndexerFunction")
    deletes = [s for s in statements if any(a.startswith("s3:Delete") for a in _actions(s))]
    assert len(deletes) == 1
    assert _actions(deletes[0]) == ["s3:DeleteObject"]
    # .metadata files, the view pages a name published here takes over, and the root
    # listing's pending records once merged: never a file
    deleted = re.findall(r'"(/[^"]*\*[^"]*)"', _resources(deletes[0]))
    assert deleted == ["/packages/*.metadata", "/views/*/simple/*", "/pending/*"]
    assert _resources(deletes[0]).endswith(_pending_arn())
    for statement in statements:  # action wildcards: tests/iam/test_least_privilege.py
        assert "s3:DeleteObjectVersion" not in _actions(statement)


def test_functions_run_latest_python_on_arm_with_tracing(template: Template) -> None:
    for handler in ("skypi.indexer.handler.handler", "skypi.api.handler.handler"):
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": handler,
                "Runtime": "python3.14",
                "Architectures": ["arm64"],
                "TracingConfig": {"Mode": "Active"},
                "Environment": {
                    "Variables": Match.object_like({"SKYPI_BUCKET": Match.any_value()})
                },
            },
        )
    for function in template.find_resources("AWS::Lambda::Function").values():
        # The X-Ray SDK (a cold-start cost) only with -c skypi:traceCalls=true.
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        assert "SKYPI_TRACING" not in variables


# -- api ----------------------------------------------------------------------------------


def test_api_is_throttled_and_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AccessLogSettings": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "DefaultRouteSettings": {"ThrottlingRateLimit": 20, "ThrottlingBurstLimit": 40},
        },
    )
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration", {"PayloadFormatVersion": "2.0"}
    )


def test_api_deletes_only_distribution_files_and_refused_provenance(synth: Synth) -> None:
    """A file (an admin's delete, a refused upload), a refused upload's provenance, a
    removed namespace's document (PEP 752) and the view pages a name published or reserved
    here takes over; never a page of the index, a page for people or a record.
    Wildcards and whole-bucket grants: tests/iam/test_least_privilege.py."""
    for statement in _statements(synth, "ApiFunction"):
        if "s3:DeleteObject" in _actions(statement):
            assert _actions(statement) == ["s3:DeleteObject"]
            deleted = re.findall(r'"(/[^"]*\*[^"]*)"', _resources(statement))
            assert deleted == [
                "/packages/*",
                "/integrity/*",
                "/namespaces/*index.json",
                "/views/*/simple/*",
            ]


# -- cdn ----------------------------------------------------------------------------------


def _distribution(synth: Synth) -> dict[str, Any]:
    _, distribution = _only(synth, "AWS::CloudFront::Distribution")
    return distribution["Properties"]["DistributionConfig"]


def _functions(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """The two CloudFront Functions: the main one ("EdgeRules") and the views' ("ViewRules")."""
    found = synth.resources("AWS::CloudFront::Function")
    named = {
        kind: [(k, f) for k, f in found.items() if k.startswith(f"Cdn{kind}")]
        for kind in ("EdgeRules", "ViewRules")
    }
    assert sum(len(v) for v in named.values()) == len(found) == 2, list(found)
    return {kind: only for kind, [only] in named.items()}


def test_edge_function_runs_on_every_viewer_request(synth: Synth) -> None:
    """The main function on every behaviour, but /view/*, which has its own."""
    functions = _functions(synth)
    config = _distribution(synth)
    for behavior in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]:
        kind = "ViewRules" if behavior.get("PathPattern") == VIEW_PATH else "EdgeRules"
        function_id, function = functions[kind]
        assert function["Properties"]["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
        associations = behavior["FunctionAssociations"]
        assert associations == [
            {
                "EventType": "viewer-request",
                "FunctionARN": {"Fn::GetAtt": [function_id, "FunctionARN"]},
            }
        ]


def test_pages_are_revalidated_and_files_cached_for_good(synth: Synth) -> None:
    config = _distribution(synth)
    policy_id, policy = _only(synth, "AWS::CloudFront::CachePolicy")
    ttl = policy["Properties"]["CachePolicyConfig"]
    assert (ttl["MinTTL"], ttl["DefaultTTL"]) == (0, 0)  # the pages' max-age=0 rules
    # CloudFront caches for the origin's s-maxage (it takes it over max-age) when that lies
    # within the policy's minimum and maximum TTL (Developer Guide: "Manage how long content
    # stays in the cache"): pages stay at the edge for seconds, clients still revalidate.
    page = cache_control_for_key("simple/demo/index.json")
    directives = dict(d.strip().partition("=")[::2] for d in page.split(","))
    assert directives["max-age"] == "0"
    assert 1 <= int(directives["s-maxage"]) <= 5
    assert ttl["MinTTL"] <= int(directives["s-maxage"]) <= ttl["MaxTTL"]
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert behaviors["/simple/*"]["CachePolicyId"] == {"Ref": policy_id}
    assert behaviors["/packages/*"]["CachePolicyId"] == CACHING_OPTIMIZED
    for path in BUCKET_PATHS:
        assert behaviors[path]["ViewerProtocolPolicy"] == "redirect-to-https"


def test_only_the_read_paths_reach_the_bucket(synth: Synth) -> None:
    """The bucket is behind /simple/* and /packages/* only, the edge function's read prefixes:
    whatever else the function lets through (uploads at /legacy/ and POST /, /api/*, /health)
    goes to the API, so no path the function does not check as a read reaches the bucket."""
    config = _distribution(synth)
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert tuple(behaviors) == (*BUCKET_PATHS, VIEW_PATH)  # and the views' function checks
    assert tuple(f"{p}*" for p in READ_PREFIXES) == BUCKET_PATHS
    groups = {g["Id"]: g for g in config.get("OriginGroups", {}).get("Items", [])}
    for path in behaviors:  # straight to the bucket, or to a group that tries it first
        target = behaviors[path]["TargetOriginId"]
        primary = groups[target]["Members"]["Items"][0]["OriginId"] if target in groups else target
        assert primary in {BUCKET_ORIGIN_ID, PEOPLE_ORIGIN_ID, VIEW_BUCKET_ORIGIN_ID}, path
    api = config["DefaultCacheBehavior"]
    assert api["TargetOriginId"] == API_ORIGIN_ID
    origins = sorted(o["Id"] for o in config["Origins"])
    assert origins == sorted(
        [
            API_ORIGIN_ID,
            BUCKET_ORIGIN_ID,
            PEOPLE_ORIGIN_ID,
            VIEW_BUCKET_ORIGIN_ID,
            VIEW_FUNCTION_ORIGIN_ID,
        ]
    )
    assert api["CachePolicyId"] == CACHING_DISABLED
    assert "POST" in api["AllowedMethods"]
    assert api["ViewerProtocolPolicy"] == "https-only"  # a redirect would drop a POST


def test_response_headers_hsts_nosniff_and_vary_accept_on_pages(synth: Synth) -> None:
    config = _distribution(synth)
    policies = synth.resources("AWS::CloudFront::ResponseHeadersPolicy")
    pages = next(b for b in config["CacheBehaviors"] if b["PathPattern"] == "/simple/*")
    page_policy = policies[pages["ResponseHeadersPolicyId"]["Ref"]]
    page = page_policy["Properties"]["ResponseHeadersPolicyConfig"]
    # With Override the policy's header replaces one "with the same name received from the
    # origin" (CloudFront API reference: ResponseHeadersPolicyCustomHeader), so it must
    # name Accept-Encoding too: pages are compressed, and a shared cache keyed on Accept
    # alone could hand a gzip body to a client that never asked for one.
    (vary,) = page["CustomHeadersConfig"]["Items"]
    assert vary["Header"] == "Vary"
    assert vary["Override"] is True
    assert {v.strip().lower() for v in vary["Value"].split(",")} == {"accept", "accept-encoding"}
    for policy in policies.values():
        security = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
        assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
        assert security["ContentTypeOptions"] == {"Override": True}


def test_cloudfront_logs_to_the_companion_stacks_bucket(synth: Synth) -> None:
    """The standard-log bucket is in us-east-1, where CloudFront delivers (infra/companion.py),
    read here through a cross-region reference."""
    logging = _distribution(synth)["Logging"]
    assert logging["Prefix"] == "cloudfront/"
    (logs,) = [k for k in synth.companion_resources("AWS::S3::Bucket") if "CloudFrontLogs" in k]
    assert logs in json.dumps(logging["Bucket"])


# -- outputs, nag, lint -------------------------------------------------------------------


def test_outputs_give_ready_to_paste_lines(synth: Synth) -> None:
    outputs = synth.template["Outputs"]
    for name in (
        "IndexUrl",
        "UploadUrl",
        "PipInstall",
        "UvInstall",
        "TwineUpload",
        "Pypirc",
        "S3Copy",
        "CreateToken",
        "BucketName",
    ):
        assert name in outputs, name
    assert "/simple/" in json.dumps(outputs["PipInstall"]["Value"])
    assert "s3://" in json.dumps(outputs["S3Copy"]["Value"])


def test_cdk_nag_passed_with_reasons_for_what_remains(synth: Synth) -> None:
    report = json.loads((synth.out / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin["pluginName"]
        for suppressed in plugin.get("suppressedViolations", []):
            assert len(suppressed["reason"]) > 20
    from infra.nag import COMPANION_REASONS, CONDITIONAL, REASONS

    for reason in [*REASONS.values(), *CONDITIONAL.values(), *COMPANION_REASONS.values()]:
        assert len(reason) > 40


def test_cfn_lint_passes(synth: Synth) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--", str(synth.template_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- access control -----------------------------------------------------------------------


def test_token_table_is_recoverable_and_streams_to_the_edge_mirror(
    template: Template, synth: Synth
) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "hash", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
        },
    )
    template.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})
    kvs_id, _ = _only(synth, "AWS::CloudFront::KeyValueStore")
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [Match.any_value(), "StreamArn"]},
            "BisectBatchOnFunctionError": True,
            "DestinationConfig": {"OnFailure": {"Destination": Match.any_value()}},
            "StartingPosition": "TRIM_HORIZON",
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "skypi.edge_tokens.handler.handler",
            "Environment": {
                "Variables": Match.object_like({"SKYPI_KVS_ARN": {"Fn::GetAtt": [kvs_id, "Arn"]}})
            },
        },
    )


def test_edge_function_checks_tokens_in_private_mode(synth: Synth) -> None:
    """Both functions look tokens up in the one store (a function has one store; a store may
    serve several functions: "Associate a key value store with a function")."""
    kvs_id, _ = _only(synth, "AWS::CloudFront::KeyValueStore")
    sources = {"EdgeRules": edge_source, "ViewRules": view_edge_source}
    for kind, (_, function) in _functions(synth).items():
        config = function["Properties"]["FunctionConfig"]
        assert config["KeyValueStoreAssociations"] == [
            {"KeyValueStoreARN": {"Fn::GetAtt": [kvs_id, "Arn"]}}
        ]
        separator, parts = function["Properties"]["FunctionCode"]["Fn::Join"]
        assert {"Fn::GetAtt": [kvs_id, "Id"]} in parts
        # What deploys is the minified code the vectors run against, in private mode.
        code = separator.join("kvs-under-test" if isinstance(p, dict) else p for p in parts)
        assert code == sources[kind]("private", "kvs-under-test")
        assert len(code.encode()) <= MAX_FUNCTION_BYTES


def _mirror_statements(synth: Synth, role: str) -> list[dict[str, Any]]:
    return [
        s
        for s in _statements(synth, role)
        if any(a.startswith("cloudfront-keyvaluestore:") for a in _actions(s))
    ]


def test_sync_and_api_may_only_describe_and_update_the_mirror(synth: Synth) -> None:
    """The token sync writes token hashes; the API (an admin's status change) a quarantined
    project's record (PEP 792), and finds the store in its environment. The indexer writes
    neither, and no role may list or read the store."""
    kvs_id, _ = _only(synth, "AWS::CloudFront::KeyValueStore")
    for role in ("AuthSync", "ApiFunction"):
        edge = _mirror_statements(synth, role)
        assert len(edge) == 1, role
        assert sorted(_actions(edge[0])) == [
            "cloudfront-keyvaluestore:DescribeKeyValueStore",
            "cloudfront-keyvaluestore:UpdateKeys",
        ]
        assert edge[0]["Resource"] == {"Fn::GetAtt": [kvs_id, "Arn"]}
    assert _mirror_statements(synth, "IndexerFunction") == []
    for name, function in synth.resources("AWS::Lambda::Function").items():
        if name.startswith("ApiFunction"):
            variables = function["Properties"]["Environment"]["Variables"]
            assert variables["SKYPI_KVS_ARN"] == {"Fn::GetAtt": [kvs_id, "Arn"]}
    statements = _statements(synth, "AuthSync")
    for statement in statements:  # reads the stream; never writes the table
        assert not any(
            a in {"dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}
            for a in _actions(statement)
        )


def _table_id(synth: Synth, fragment: str) -> str:
    (table_id,) = [k for k in synth.resources("AWS::DynamoDB::Table") if fragment in k]
    return table_id


def test_api_dynamodb_grants_are_least_privilege(synth: Synth, template: Template) -> None:
    """Tokens: look up, record last use, write minted ones. Publishers: query their key space
    and put exchanged OIDC tokens into theirs; nothing else (no scan, no delete)."""
    tokens, publishers = _table_id(synth, "Tokens"), _table_id(synth, "Publishers")
    statements = _statements(synth, "ApiFunction")
    dynamo = {
        (tuple(sorted(_actions(s))), _resources(s), json.dumps(s.get("Condition")))
        for s in statements
        if any(a.startswith("dynamodb:") for a in _actions(s))
    }
    token_arn = json.dumps({"Fn::GetAtt": [tokens, "Arn"]})
    publisher_arn = json.dumps({"Fn::GetAtt": [publishers, "Arn"]})

    def leading(kind: str) -> str:
        return json.dumps({"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [kind]}})

    assert dynamo == {
        (("dynamodb:GetItem", "dynamodb:UpdateItem"), token_arn, "null"),
        (("dynamodb:PutItem",), token_arn, "null"),
        (("dynamodb:Query",), publisher_arn, leading("publisher")),
        (("dynamodb:PutItem",), publisher_arn, leading("oidc-token")),
    }
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "skypi.api.handler.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "SKYPI_PRIVATE": "true",
                        "SKYPI_TOKEN_TABLE": Match.any_value(),
                        "SKYPI_PUBLISHER_TABLE": {"Ref": publishers},
                        "SKYPI_OIDC_AUDIENCE": Match.any_value(),
                    }
                )
            },
        },
    )


# -- what AWS does that moto does not show ----------------------------------------------------


def test_api_and_indexer_may_only_invalidate_this_distribution(synth: Synth) -> None:
    """A deleted or restored file must leave the edge caches (files are cached for a year)."""
    distribution, _ = _only(synth, "AWS::CloudFront::Distribution")
    for role in (
        "ApiFunctionServiceRole",
        "IndexerFunctionServiceRole",
        "InvalidationsFunctionServiceRole",
    ):
        granted = [
            s
            for s in _statements(synth, role)
            if any(a.startswith("cloudfront:") for a in _actions(s))
        ]
        assert len(granted) == 1, role
        assert _actions(granted[0]) == ["cloudfront:CreateInvalidation"]
        assert distribution in _resources(granted[0])  # this distribution's ARN, no wildcard
        assert "*" not in json.dumps(granted[0]["Resource"]).replace(":*", "")
    for name, function in synth.resources("AWS::Lambda::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        if name.startswith(("Api", "Indexer", "Invalidations")):
            assert variables["SKYPI_DISTRIBUTION_ID"] == {"Ref": distribution}, name


def test_refused_invalidations_are_queued_retried_and_alarmed(synth: Synth) -> None:
    """What CloudFront refuses (too many in progress, throttled) goes on a queue that the
    invalidator drains: every five minutes for an hour, then the dead-letter queue, whose
    depth raises an alarm (docs/deploy.md)."""
    pending, queue = _only(
        synth, "AWS::SQS::Queue", VisibilityTimeout=300, SqsManagedSseEnabled=True
    )
    assert pending.startswith("InvalidationsPending")
    redrive = queue["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == 12
    assert "InvalidationsDeadLetters" in json.dumps(redrive["deadLetterTargetArn"])
    _, mapping = _only(
        synth, "AWS::Lambda::EventSourceMapping", EventSourceArn={"Fn::GetAtt": [pending, "Arn"]}
    )
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "InvalidationsFunction" in json.dumps(mapping["Properties"]["FunctionName"])
    _, function = _only(synth, "AWS::Lambda::Function", Handler="skypi.indexer.invalidator.handler")
    assert function["Properties"]["Timeout"] * 6 <= 300  # Lambda's advice for the queue
    for role in ("ApiFunctionServiceRole", "IndexerFunctionServiceRole"):
        sends = [
            s
            for s in _statements(synth, role)
            if "sqs:SendMessage" in _actions(s) and "InvalidationsPending" in json.dumps(s)
        ]
        assert len(sends) == 1, role
        assert _resources(sends[0]) == json.dumps({"Fn::GetAtt": [pending, "Arn"]})
    for name, resource in synth.resources("AWS::Lambda::Function").items():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        if name.startswith(("ApiFunction", "IndexerFunction")):
            assert variables["SKYPI_INVALIDATION_QUEUE_URL"] == {"Ref": pending}, name
    alarm = next(
        a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if "InvalidationsDeadLetters" in json.dumps(a["Properties"].get("Dimensions"))
    )
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_missing_pages_and_files_are_cached_for_at_most_a_second(synth: Synth) -> None:
    """CloudFront caches a 4xx for 10 s unless told otherwise (Developer Guide: "Control how
    long CloudFront caches errors"); a page fetched just before its first upload would stay
    404 that long."""
    config = _distribution(synth)
    ttls = {e["ErrorCode"]: e["ErrorCachingMinTTL"] for e in config["CustomErrorResponses"]}
    assert ttls.keys() >= {403, 404}
    assert all(ttls[code] <= 1 for code in (403, 404))
    assert not any("ResponsePagePath" in e for e in config["CustomErrorResponses"])


def test_cloudfront_names_include_the_region(synth: Synth) -> None:
    """CloudFront resources are named per account, not per region: the same stack deployed in
    two regions of one account must not collide on any of them."""
    named = {
        "AWS::CloudFront::KeyValueStore": lambda p: p["Name"],
        "AWS::CloudFront::Function": lambda p: p["Name"],
        "AWS::CloudFront::CachePolicy": lambda p: p["CachePolicyConfig"]["Name"],
        "AWS::CloudFront::OriginRequestPolicy": lambda p: p["OriginRequestPolicyConfig"]["Name"],
        "AWS::CloudFront::ResponseHeadersPolicy": (
            lambda p: p["ResponseHeadersPolicyConfig"]["Name"]
        ),
        "AWS::CloudFront::OriginAccessControl": lambda p: p["OriginAccessControlConfig"]["Name"],
    }
    seen = 0
    for kind, name_of in named.items():
        for logical_id, resource in synth.resources(kind).items():
            name = name_of(resource["Properties"])
            # The stack's region as a literal (an explicit region, which the companion stack's
            # cross-region references need) or as the AWS::Region pseudo parameter.
            parts = name["Fn::Join"][1] if isinstance(name, dict) else [name]
            assert {"Ref": "AWS::Region"} in parts or any(
                isinstance(part, str) and synth.region in part for part in parts
            ), logical_id
            seen += 1
    assert seen >= 6


def test_api_function_keeps_internet_egress_for_the_issuers_keys(synth: Synth) -> None:
    """Outside a VPC a Lambda function reaches the internet (the JWKS of GitHub, GitLab, ...);
    in one it would need a NAT gateway."""
    (api,) = [
        r
        for r in synth.resources("AWS::Lambda::Function").values()
        if r["Properties"].get("Handler") == "skypi.api.handler.handler"
    ]
    assert "VpcConfig" not in api["Properties"]


def test_publisher_table_expires_used_tokens_and_is_recoverable(
    synth: Synth, template: Template
) -> None:
    table = synth.resources("AWS::DynamoDB::Table")[_table_id(synth, "Publishers")]
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "kind", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert "StreamSpecification" not in props  # the edge never knows about publishers
    assert table["DeletionPolicy"] == "Retain"
    tokens = synth.resources("AWS::DynamoDB::Table")[_table_id(synth, "Tokens")]
    assert tokens["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "ttl"
    outputs = synth.template["Outputs"]
    assert {"PublisherTable", "OidcAudience"} <= set(outputs)
    sync = _statements(synth, "AuthSync")
    assert _table_id(synth, "Publishers") not in json.dumps(sync)


def test_trusted_publishing_and_provenance_reach_the_api(synth: Synth) -> None:
    """No bucket behaviour matches them, so the default behaviour (the API's) takes them."""
    config = _distribution(synth)
    for path in ("/_/oidc/mint-token", "/integrity/demo/1.0/demo-1.0.tar.gz/provenance"):
        assert not any(fnmatchcase(path, b["PathPattern"]) for b in config["CacheBehaviors"])
    api = config["DefaultCacheBehavior"]
    assert api["TargetOriginId"] == API_ORIGIN_ID
    assert api["CachePolicyId"] == CACHING_DISABLED
    assert "POST" in api["AllowedMethods"]
