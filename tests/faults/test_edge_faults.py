"""Throttled calls to the edge's control planes, under a workload (moto for S3, SQS and
DynamoDB; CloudFront and its KeyValueStore as their emulations, which apply AWS's limits):

- the token mirror: tokens created and revoked in the table, its stream delivered to the real
  token-sync handler as Lambda's event source mapping does (batches retried up to 10 times,
  bisected on error, then sent to the failure destination), with ``DescribeKeyValueStore`` and
  ``UpdateKeys`` throttled;
- the CDN: files deleted through the admin path while ``CreateInvalidation`` is throttled; a
  refused batch goes to the invalidation queue, whose real invalidator handler sends it again.

Faults at a few times the storage tier's rate (these calls are few), then none until every
stream record and queued invalidation is handled. Then the mirror holds exactly the table's
edge records, every deleted file's paths were invalidated, and nothing reached a dead-letter
queue or failure destination. The counts are printed with the storage tier's.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from skypi.core.invalidation import invalidation_paths
from skypi.core.tokens import TokenRecord, new_token
from skypi.edge_tokens import handler as sync_handler
from skypi.edge_tokens.sync import KeyValueStoreWriter
from skypi.indexer import invalidator
from skypi.indexer.admin import Admin
from skypi.indexer.service import Indexer, Landed
from skypi.local.emulator import (
    CloudFrontEmulation,
    KeyValueStoreEmulation,
    LambdaContext,
    Poller,
    provision,
)
from skypi.store.cdn import CloudFrontCdn, SqsPendingInvalidations
from skypi.store.dynamo_tokens import DynamoTokenRepository
from skypi.store.s3 import S3Store
from tests.dists import wheel_bytes, wheel_name
from tests.emulated import CREDENTIALS, s3_client
from tests.faults.injector import Faults, ThrottledCalls
from tests.faults.report import RUNS
from tests.faults.test_storage_faults import MINIMUM, SEED

STEPS = 80
RATE = 0.15  # of each kind, per call
CDN_RATE = 0.3  # CreateInvalidation is called once per delete: fewer calls
DISTRIBUTION = "E2FAULTSEXAMPLE"
KVS_ARN = "arn:aws:cloudfront::123456789012:key-value-store/0fa017ed-0000-0000-0000-000000000000"
RETRY_ATTEMPTS = 10  # infra/auth.py: the token sync's event source mapping
STREAM_BATCH = 100
PROJECTS = ("alpha", "beta", "gamma-ray")


@dataclass
class Stream:
    """The token table's stream, read in order, and Lambda's event source mapping over it."""

    client: Any
    arn: str
    faults: Faults
    pending: list[tuple[list[dict[str, Any]], int]] = field(default_factory=list)
    iterators: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)  # the failure destination

    def read(self) -> None:
        shards = self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self.iterators:
                self.iterators[shard_id] = self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            answer = self.client.get_records(ShardIterator=self.iterators[shard_id])
            self.iterators[shard_id] = answer["NextShardIterator"]
            records = answer["Records"]
            for start in range(0, len(records), STREAM_BATCH):
                self.pending.append((records[start : start + STREAM_BATCH], 0))

    def invoke(self) -> None:
        """One invocation on the oldest batch: on an error it is bisected and retried, and
        after its retries it goes to the failure destination (as ``bisect_batch_on_error``
        and ``retry_attempts`` do)."""
        if not self.pending:
            return
        batch, attempts = self.pending.pop(0)
        try:
            sync_handler.handler({"Records": batch}, LambdaContext())
            return
        except Exception:
            self.retries += 1
        if attempts >= RETRY_ATTEMPTS:
            self.failed += batch
            return
        halves = [batch[: len(batch) // 2], batch[len(batch) // 2 :]] if len(batch) > 1 else [batch]
        self.pending[:0] = [(half, attempts + 1) for half in halves if half]


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def _waiting(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_the_token_mirror_and_the_cdn_under_throttling(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    faults = Faults(SEED, {"kvs-throttling": RATE, "cdn-throttling": CDN_RATE})
    s3 = s3_client(moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, **CREDENTIALS)
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, **CREDENTIALS)
    bucket = f"skypi-{uuid.uuid4().hex[:12]}"
    resources = provision(s3, sqs, bucket, dynamodb=dynamodb, invalidation_visibility_timeout=0)
    tokens = DynamoTokenRepository(resources.token_table, dynamodb)
    streams = boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, **CREDENTIALS)
    table = dynamodb.describe_table(TableName=resources.token_table)["Table"]
    stream = Stream(streams, table["LatestStreamArn"], faults)
    mirror = KeyValueStoreEmulation()
    kvs = ThrottledCalls(
        mirror,
        faults,
        "kvs-throttling",
        "ThrottlingException",
        frozenset({"describe_key_value_store", "update_keys"}),
    )
    monkeypatch.setattr(sync_handler, "_writer", KeyValueStoreWriter(KVS_ARN, kvs))  # type: ignore[arg-type]

    clock = Clock()
    cloudfront = CloudFrontEmulation({DISTRIBUTION}, takes=60.0, clock=clock)
    throttled = ThrottledCalls(
        cloudfront, faults, "cdn-throttling", "Throttling", frozenset({"create_invalidation"})
    )
    pending = SqsPendingInvalidations(resources.invalidation_queue_url, sqs)
    store = S3Store(bucket, s3)
    indexer = Indexer(store, cdn=CloudFrontCdn(DISTRIBUTION, throttled, pending))
    monkeypatch.setattr(invalidator, "_cdn", CloudFrontCdn(DISTRIBUTION, throttled))
    queue = (resources.invalidation_queue_url, resources.invalidation_queue_arn)
    resend = Poller(sqs, resources, invalidator.handler, wait_seconds=0, queue=queue)

    rng = random.Random(SEED)
    done: Counter[str] = Counter()
    live: dict[str, str] = {}  # token id -> hash
    revoked: set[str] = set()  # hashes
    listed: list[str] = []
    deleted: list[str] = []
    resent = 0  # refused invalidations sent again by the invalidator

    def drop(i: int) -> None:
        project = rng.choice(PROJECTS)
        key = f"packages/{project}/{wheel_name(project, f'1.{i}')}"
        s3.put_object(Bucket=bucket, Key=key, Body=wheel_bytes(project, f"1.{i}"))
        indexer.apply([Landed(key)])
        listed.append(key)
        done["drop"] += 1

    for i in range(10):
        drop(i)
    for i in range(10, 10 + STEPS):
        operation = rng.choices(["create", "revoke", "delete", "drop"], [3, 1, 3, 1])[0]
        if operation == "create":
            projects = set(rng.sample(PROJECTS, rng.randint(1, 2))) if rng.random() < 0.5 else None
            record = TokenRecord.create(
                new_token(), name=f"t{i}", scopes={"read"}, projects=projects
            )
            tokens.add(record)
            live[record.id] = record.hash
        elif operation == "revoke" and live:
            token_id = rng.choice(sorted(live))
            tokens.revoke(token_id)
            revoked.add(live.pop(token_id))
        elif operation == "delete" and listed:
            key = listed.pop(rng.randrange(len(listed)))
            Admin(indexer).delete(key.split("/")[1], key.rsplit("/", 1)[1])
            deleted.append(key)
        else:
            drop(i)
            continue
        done[operation] += 1
        stream.read()
        stream.invoke()
        resent += resend.poll_once()
        clock.now += 20.0  # invalidations in progress finish (60 s each)

    faults.enabled = False
    for _ in range(1000):
        stream.read()
        if not stream.pending:
            break
        stream.invoke()
    resent += resend.drain()
    clock.now += 120.0

    edge = {
        item["hash"]["S"]: item["edge"]["S"]
        for item in dynamodb.scan(TableName=resources.token_table)["Items"]
        if "edge" in item
    }
    assert mirror.items == edge, "the KeyValueStore is not the table's edge records"
    assert not revoked & mirror.items.keys(), "a revoked token is still allowed at the edge"
    assert stream.failed == [], "stream records went to the failure destination"
    assert sorted(set(invalidation_paths(deleted))) == sorted(
        set(cloudfront.invalidated(DISTRIBUTION)) & set(invalidation_paths(deleted))
    ), "a deleted file's paths were never invalidated"
    assert _waiting(sqs, resources.invalidation_queue_url) == 0
    assert _waiting(sqs, resources.invalidation_dead_letter_queue_url) == 0, "invalidations DLQ"
    injected = dict(sorted(faults.injected.items()))
    RUNS.append(
        f"[edge] seed {SEED}: operations {dict(sorted(done.items()))}; control-plane calls "
        f"{dict(sorted(faults.requests.items()))}; injected {injected}; retries "
        f"{{'token-sync invocations': {stream.retries}, 'invalidations sent again': "
        f"{resent}}}; "
        f"failure destination 0; DLQ 0; drift 0"
    )
    for kind in faults.rates:
        assert faults.injected[kind] >= MINIMUM, f"only {faults.injected[kind]} faults of {kind}"
