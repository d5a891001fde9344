"""Deleted and restored files leave the CDN's caches (files are cached there for a year), within
CloudFront's invalidation limits, and an invalidation CloudFront refuses is sent again later.

CloudFront stands in as :class:`~skypi.local.emulator.CloudFrontEmulation`, which applies the
limits AWS documents and moto does not (3,000 paths per request and in progress, 15 wildcard
paths in progress, CallerReference) on a clock the tests move; moto holds the bucket and the
queues, and the real invalidator handler drains the queue of refused invalidations."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.invalidation import Batch, invalidation_paths
from skypi.indexer import handler as indexer_handler
from skypi.indexer import invalidator
from skypi.indexer.service import Gone, Indexer, Landed
from skypi.local.emulator import INVALIDATION_MAX_RECEIVE_COUNT, CloudFrontEmulation, Poller
from skypi.store.cdn import CloudFrontCdn, SqsPendingInvalidations
from tests.aws.conftest import Emulated
from tests.dists import wheel_bytes, wheel_name

DISTRIBUTION = "E2QWRUHEXAMPLE"
TAKES = 60.0  # seconds an invalidation stays in progress, on the test's clock


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Edge:
    cloudfront: CloudFrontEmulation
    clock: Clock
    cdn: CloudFrontCdn  # as the API and indexer have it: refusals go to the queue
    invalidator: Poller  # the invalidator Lambda on that queue

    def in_progress_paths(self) -> list[str]:
        running = self.cloudfront.in_progress(DISTRIBUTION)
        return [p for i in running for p in i.paths]

    def invalidated(self) -> list[str]:
        return self.cloudfront.invalidated(DISTRIBUTION)


@pytest.fixture
def edge(aws: Emulated, monkeypatch: pytest.MonkeyPatch) -> Edge:
    clock = Clock()
    cloudfront = CloudFrontEmulation({DISTRIBUTION}, takes=TAKES, clock=clock)
    pending = SqsPendingInvalidations(aws.resources.invalidation_queue_url, aws.sqs)
    cdn = CloudFrontCdn(DISTRIBUTION, cloudfront, pending)
    monkeypatch.setattr(invalidator, "_cdn", CloudFrontCdn(DISTRIBUTION, cloudfront))
    queue = (aws.resources.invalidation_queue_url, aws.resources.invalidation_queue_arn)
    poller = Poller(aws.sqs, aws.resources, invalidator.handler, wait_seconds=0, queue=queue)
    return Edge(cloudfront, clock, cdn, poller)


def _waiting(aws: Emulated, url: str) -> int:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def _discard(aws: Emulated, url: str) -> None:
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        aws.sqs.delete_message_batch(QueueUrl=url, Entries=entries)  # type: ignore[arg-type]


def _drop_indexed(aws: Emulated, project: str, versions: list[str]) -> list[str]:
    keys = []
    for version in versions:
        key = f"packages/{project}/{wheel_name(project, version)}"
        aws.drop(key, wheel_bytes(project, version))
        keys.append(key)
    aws.indexer.apply([Landed(k) for k in keys])
    return keys


def test_eight_deleted_cpu_wheels_are_one_invalidation_of_sixteen_exact_paths(
    aws: Emulated, edge: Edge
) -> None:
    """Once 16 wildcard paths, over the 15 CloudFront allows in progress, and refused."""
    keys = _drop_indexed(aws, "torch", [f"2.{i}.0+cpu" for i in range(8)])
    for key in keys:
        aws.s3.delete_object(Bucket=aws.resources.bucket, Key=key)
    Indexer(aws.store, cdn=edge.cdn).apply([Gone(k) for k in keys])
    assert edge.cloudfront.calls == 1
    [made] = edge.cloudfront.in_progress(DISTRIBUTION)
    assert (len(made.paths), made.wildcards) == (16, 0)
    assert sorted(made.paths) == sorted(invalidation_paths(keys))
    assert all("%2Bcpu" in p and "+" not in p for p in made.paths)  # the function's spelling
    assert _waiting(aws, aws.resources.invalidation_queue_url) == 0


def test_a_burst_of_one_hundred_deletes_stays_within_the_limits(
    aws: Emulated, edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``aws s3 rm`` of 100 files: the indexer Lambda takes their events in batches, and each
    batch is one invalidation of exact paths, all taken at once (200 paths in progress)."""
    monkeypatch.setattr(indexer_handler, "_indexer", Indexer(aws.store, cdn=edge.cdn))
    keys = _drop_indexed(aws, "burst", [f"1.0.{i}" for i in range(100)])
    _discard(aws, aws.resources.queue_url)  # their creation events: indexed already
    for key in keys:
        aws.s3.delete_object(Bucket=aws.resources.bucket, Key=key)
    aws.poller.drain()
    assert 10 <= edge.cloudfront.calls < 100  # by batch, not by file
    assert sorted(edge.in_progress_paths()) == sorted(invalidation_paths(keys))
    assert _waiting(aws, aws.resources.invalidation_queue_url) == 0
    edge.clock.now += TAKES
    assert len(edge.invalidated()) == 200


def test_more_paths_than_may_be_in_progress_wait_in_the_queue_until_there_is_room(
    aws: Emulated, edge: Edge
) -> None:
    """1,600 files deleted at once are 3,200 paths: 3,000 go now, the rest when they are done."""
    keys = [f"packages/big/big-1.{i}.tar.gz" for i in range(1_600)]
    edge.cdn.invalidate(keys)
    assert len(edge.in_progress_paths()) == 3_000
    assert _waiting(aws, aws.resources.invalidation_queue_url) == 1
    assert edge.invalidator.poll_once() == 0  # still full: refused again, kept
    edge.clock.now += TAKES
    assert edge.invalidator.poll_once() == 1
    edge.clock.now += TAKES
    assert sorted(edge.invalidated()) == sorted(invalidation_paths(keys))
    assert _waiting(aws, aws.resources.invalidation_queue_url) == 0


def test_a_refused_batch_of_long_names_is_kept_in_messages_sqs_takes(
    aws: Emulated, edge: Edge
) -> None:
    """3,000 paths of long filenames are more than one SQS message holds (256 KiB; moto takes
    larger ones, SQS does not)."""
    edge.cloudfront.throttle(1)
    keys = [f"packages/long/{'x' * 150}-1.{i}.tar.gz" for i in range(1_500)]
    edge.cdn.invalidate(keys)
    assert _waiting(aws, aws.resources.invalidation_queue_url) > 1  # one batch, in parts
    while edge.invalidator.poll_once():
        pass
    edge.clock.now += TAKES
    assert sorted(edge.invalidated()) == sorted(invalidation_paths(keys))


def test_an_api_delete_whose_invalidation_is_refused_is_sent_again_later(
    aws: Emulated, edge: Edge
) -> None:
    [key] = _drop_indexed(aws, "demo", ["1.0+cpu"])
    # Another invalidation of 3,000 paths is in progress (a deploy's, say): no room.
    edge.cloudfront.create_invalidation(
        DistributionId=DISTRIBUTION,
        InvalidationBatch={
            "Paths": {"Quantity": 3000, "Items": [f"/site/{i}" for i in range(3000)]},
            "CallerReference": "deploy",
        },
    )
    client = TestClient(create_app(aws.store, Settings(upload_auth=False), aws.tokens, edge.cdn))
    filename = key.rsplit("/", 1)[1]
    assert client.delete(f"/api/projects/demo/files/{filename}").status_code == 200
    assert edge.cloudfront.calls == 2  # tried, refused (TooManyInvalidationsInProgress)
    assert _waiting(aws, aws.resources.invalidation_queue_url) == 1
    assert edge.invalidator.poll_once() == 0  # the other one still runs
    edge.clock.now += TAKES
    assert edge.invalidator.poll_once() == 1
    edge.clock.now += TAKES
    assert set(invalidation_paths([key])) <= set(edge.invalidated())
    assert _waiting(aws, aws.resources.invalidation_queue_url) == 0


def test_a_throttled_invalidation_is_sent_again_with_its_caller_reference(
    aws: Emulated, edge: Edge
) -> None:
    edge.cloudfront.throttle(1)
    edge.cdn.invalidate(["packages/demo/demo-1.0.tar.gz"])
    assert edge.invalidator.poll_once() == 1
    edge.invalidator.poll_once()
    [made] = edge.cloudfront.in_progress(DISTRIBUTION)
    # Sent again (a lost answer, say), the same batch makes no second invalidation.
    again = Batch(made.paths, made.reference)
    CloudFrontCdn(DISTRIBUTION, edge.cloudfront).send(again)
    assert len(edge.cloudfront.in_progress(DISTRIBUTION)) == 1


def test_an_invalidation_that_keeps_failing_ends_in_the_alarmed_dead_letter_queue(
    aws: Emulated, edge: Edge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A distribution that is gone answers NoSuchDistribution every time; after the queue's
    receive limit the batch waits in the dead-letter queue, whose depth raises the alarm
    (tests/infra/test_template.py), and an unreadable message goes there too."""
    gone = CloudFrontCdn("EGONE", edge.cloudfront)
    monkeypatch.setattr(invalidator, "_cdn", gone)
    CloudFrontCdn("EGONE", edge.cloudfront, edge.cdn.pending).invalidate(["packages/x/x-1.zip"])
    aws.sqs.send_message(QueueUrl=aws.resources.invalidation_queue_url, MessageBody="{}")
    for _ in range(INVALIDATION_MAX_RECEIVE_COUNT + 1):
        assert edge.invalidator.poll_once() == 0
    assert _waiting(aws, aws.resources.invalidation_queue_url) == 0
    assert _waiting(aws, aws.resources.invalidation_dead_letter_queue_url) == 2


def test_restoring_an_overwritten_drop_in_invalidates(aws: Emulated, edge: Edge) -> None:
    indexer = Indexer(aws.store, cdn=edge.cdn)
    key = f"packages/demo/{wheel_name('demo', '3.0')}"
    aws.drop(key, wheel_bytes("demo", "3.0"))
    indexer.apply([Landed(key)])
    aws.drop(key, wheel_bytes("demo", "3.0", payload=b"an impostor"))
    outcome = indexer.apply([Landed(key)])
    assert "restored" in outcome.conflicts[0][1]
    assert edge.in_progress_paths() == invalidation_paths([key])


def test_a_replayed_delete_event_invalidates_nothing_more(aws: Emulated, edge: Edge) -> None:
    [key] = _drop_indexed(aws, "demo", ["2.0"])
    aws.s3.delete_object(Bucket=aws.resources.bucket, Key=key)
    indexer = Indexer(aws.store, cdn=edge.cdn)
    indexer.apply([Landed(key)])  # whatever the event said: storage is the truth
    assert not indexer.apply([Gone(key)]).removed
    assert edge.cloudfront.calls == 1


def test_without_a_queue_a_refusal_is_logged_with_the_command_that_finishes_it(
    edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    edge.cloudfront.throttle(1)
    CloudFrontCdn(DISTRIBUTION, edge.cloudfront).invalidate(["packages/demo/demo-1.0.tar.gz"])
    assert "aws cloudfront create-invalidation" in caplog.text
    assert "/packages/demo/demo-1.0.tar.gz.metadata" in caplog.text
