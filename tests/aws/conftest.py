"""The AWS data path against a moto server: bucket, queue, notification, and the real handler."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
import pytest

from skypi.indexer import handler as indexer_handler
from skypi.indexer.service import Indexer
from skypi.local.emulator import Poller, Resources, provision
from skypi.store.dynamo_tokens import DynamoTokenRepository
from skypi.store.s3 import S3Store
from tests.emulated import CREDENTIALS, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient


@dataclass
class Emulated:
    s3: S3Client
    sqs: SQSClient
    resources: Resources
    store: S3Store
    indexer: Indexer
    poller: Poller
    tokens: DynamoTokenRepository

    def drop(self, key: str, data: bytes) -> None:
        """What ``aws s3 cp`` does: a plain PUT, no conditions."""
        self.s3.put_object(Bucket=self.resources.bucket, Key=key, Body=data)

    def page(self, key: str) -> bytes:
        return self.store.get(key)[1]


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Emulated:
    """A fresh bucket and queue per test; the handler configured as Lambda would be (env)."""
    return emulate(moto_endpoint, monkeypatch)


def emulate(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Emulated:
    """A fresh bucket and queue, and the environment the handlers read (for as long as
    ``monkeypatch`` lasts: a test's, or a module's ``MonkeyPatch.context()``)."""
    bucket = f"skypi-{uuid.uuid4().hex[:12]}"
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
        "SKYPI_BUCKET": bucket,
        "POWERTOOLS_METRICS_NAMESPACE": "skypi-test",
        # The handlers' EMF lines go to stdout, where these tests read the CLI's output
        # (test_api_metrics turns them back on to read them).
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(indexer_handler, "_indexer", None)
    s3 = s3_client(moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, **CREDENTIALS)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, **CREDENTIALS)
    resources = provision(
        s3, sqs, bucket, visibility_timeout=2, dynamodb=dynamodb, invalidation_visibility_timeout=0
    )
    monkeypatch.setenv("SKYPI_TOKEN_TABLE", resources.token_table)
    sqs.purge_queue(QueueUrl=resources.queue_url)  # the s3:TestEvent of the setup
    store = S3Store(bucket, s3)
    return Emulated(
        s3,
        sqs,
        resources,
        store,
        Indexer(store),
        Poller(sqs, resources, indexer_handler.handler, wait_seconds=0),
        DynamoTokenRepository(resources.token_table, dynamodb),
    )
