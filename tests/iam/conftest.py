"""The IAM tier: the functions' AWS calls on moto, recorded, against their roles' grants in the
synthesized template (see CONTRIBUTING.md, "The IAM tier")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from skypi.api import handler as api_handler
from skypi.api import viewhandler as view_handler
from skypi.edge_tokens import handler as sync_handler
from skypi.local.emulator import KeyValueStoreEmulation
from tests.aws.conftest import Emulated, aws
from tests.emulated import CREDENTIALS
from tests.iam.calls import Call, Recorder
from tests.iam.policy import Decision, evaluate
from tests.iam.template import ACCOUNT, Deployment, Grant, grants
from tests.oidc import Issuer, Tls
from tests.synth import Synth

AUDIENCE = "skypi-iam-tier"
__all__ = ["aws"]  # the AWS data path fixture (tests/aws), reused
KVS_ARN = f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/00000000-0000-4000-8000-{{}}"


class KeyValueStoreAnswers:
    """Answers a real ``cloudfront-keyvaluestore`` botocore client from the emulation (moto has
    no KeyValueStore): the call is made, hooked and recorded as on Lambda, then served here
    instead of being signed and sent."""

    def __init__(self, store: KeyValueStoreEmulation) -> None:
        self.store = store

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params", self._keep)
        client.meta.events.register_first("before-call", self._answer)

    @staticmethod
    def _keep(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["skypi_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        method = getattr(
            self.store,
            {"DescribeKeyValueStore": "describe_key_value_store", "UpdateKeys": "update_keys"}[
                model.name
            ],
        )
        return AWSResponse("https://kvs.invalid", 200, HTTPHeaders(), None), method(
            **context["skypi_params"]
        )


@dataclass
class Stack:
    """moto's stand-ins for the stack's resources, configured into the functions' environment
    as the template configures them, and the recorder of their calls."""

    aws: Emulated
    endpoint: str
    deployment: Deployment
    recorder: Recorder
    synth: Synth
    kvs: KeyValueStoreEmulation
    issuer: Issuer | None = None

    def grants(self, function: str) -> list[Grant]:
        return grants(self.synth.template, function, self.deployment)

    def denied(self, calls: list[Call]) -> list[str]:
        """Every request of ``calls`` its function's role does not allow, one line each."""
        policies = {f: [g.statement for g in self.grants(f)] for f in {c.function for c in calls}}
        lines = []
        for call in calls:
            for request in call.requests:
                decision = evaluate(policies[call.function], request)
                if decision is not Decision.ALLOWED:
                    lines.append(f"{call.function}: {call} needs {request}: {decision.value}")
        return lines


@pytest.fixture
def kvs() -> KeyValueStoreEmulation:
    return KeyValueStoreEmulation()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, kvs: KeyValueStoreEmulation) -> Recorder:
    """Every botocore client made from here on is watched (the functions make theirs with
    botocore.session.get_session().create_client, the tests' with boto3)."""
    recorder = Recorder()
    original = botocore.session.Session.create_client

    def create_client(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        client = original(self, service_name, *args, **kwargs)
        recorder.watch(client)
        if service_name == "cloudfront-keyvaluestore":
            KeyValueStoreAnswers(kvs).attach(client)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return recorder


def _distribution(endpoint: str) -> str:
    cloudfront = boto3.client("cloudfront", endpoint_url=endpoint, **CREDENTIALS)  # type: ignore[call-overload]
    origin = {
        "Id": "bucket",
        "DomainName": "bucket.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    config = {
        "CallerReference": uuid.uuid4().hex,
        "Comment": "the IAM tier",
        "Enabled": True,
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "bucket",
            "ViewerProtocolPolicy": "https-only",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        },
    }
    return str(cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"])


@pytest.fixture
def stack(
    recorder: Recorder,
    kvs: KeyValueStoreEmulation,
    aws: Emulated,
    synth: Synth,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    tls: Tls,
    issuer: Issuer,
) -> Stack:
    resources = aws.resources
    stream = aws.tokens.client.describe_table(TableName=resources.token_table)["Table"]
    deployment = Deployment(
        bucket=resources.bucket,
        queue=resources.queue_url.rsplit("/", 1)[-1],
        dead_letters=f"{resources.bucket}-index-dlq",
        sync_failures=f"{resources.bucket}-sync-failures",
        token_table=resources.token_table,
        token_stream_arn=stream["LatestStreamArn"],
        publisher_table=resources.publisher_table,
        distribution_id=_distribution(moto_endpoint),
        kvs_arn=KVS_ARN.format(uuid.uuid4().hex[:12]),
        invalidations=resources.invalidation_queue_url.rsplit("/", 1)[-1],
        invalidation_dead_letters=resources.invalidation_dead_letter_queue_url.rsplit("/", 1)[-1],
        schedule_group=f"{resources.bucket}-views",
    )
    scheduler = boto3.client("scheduler", endpoint_url=moto_endpoint, **CREDENTIALS)  # type: ignore[call-overload]
    scheduler.create_schedule_group(Name=deployment.schedule_group)
    recorder.hash_keys.update({resources.token_table: "hash", resources.publisher_table: "kind"})
    for name, value in {
        "SKYPI_DISTRIBUTION_ID": deployment.distribution_id,
        "SKYPI_KVS_ARN": deployment.kvs_arn,
        "SKYPI_PUBLISHER_TABLE": resources.publisher_table,
        "SKYPI_PRIVATE": "true",
        "SKYPI_INVALIDATION_QUEUE_URL": resources.invalidation_queue_url,
        # the root listing rebuilt by a message on the indexer's queue, as the stack has it
        # (no delay: the next drain takes it, as the indexer)
        "SKYPI_INDEX_QUEUE_URL": resources.queue_url,
        "SKYPI_ROOT_DELAY_SECONDS": "0",
        "SKYPI_OIDC_AUDIENCE": AUDIENCE,
        "SSL_CERT_FILE": str(tls.ca),  # the issuer's https, as Lambda's CA store
        "SKYPI_VIEW_SCHEDULE_GROUP": deployment.schedule_group,
        "SKYPI_VIEW_SCHEDULER_ROLE_ARN": deployment.scheduler_role_arn,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(api_handler, "_mangum", None)
    monkeypatch.setattr(view_handler, "_built", None)
    monkeypatch.setattr(sync_handler, "_writer", None)
    return Stack(aws, moto_endpoint, deployment, recorder, synth, kvs, issuer)


@dataclass
class Ledger:
    """The calls each scenario made, with the stack it made them on (for the mutation pass)."""

    runs: dict[str, Stack] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


LEDGER = Ledger()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LEDGER.summary:
        terminalreporter.section("IAM grants: every statement stripped in turn")
        for line in LEDGER.summary:
            terminalreporter.write_line(line)
