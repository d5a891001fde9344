"""A burst of drop-ins taken by several concurrent indexer environments, as Lambda's SQS
event source runs them: the scenario ``make bench`` measures (``bench/burst.py``), small. It
counts; it never times."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from bench.burst import WindowedPoller, burst_files, drop_all, listed_at, unlisted
from bench.s3cost import RequestLog

from skypi.core.constants import ROOT_REBUILD_MESSAGE
from skypi.core.keys import LANDING_KEY, ROOT_JSON_KEY
from skypi.core.pages import RootListing
from skypi.indexer.handler import process
from skypi.indexer.service import Indexer
from skypi.store.rebuilds import SqsRootRebuilds
from skypi.store.s3 import S3Store
from tests.aws.conftest import Emulated
from tests.emulated import s3_client

ENVIRONMENTS = 3
PROJECTS = 4
PER_PROJECT = 8


class Environment:
    """One execution environment: its own indexer (an S3 client of its own, whose requests it
    counts) behind Lambda's poller, in a thread; its invocations recorded."""

    def __init__(self, aws: Emulated, endpoint: str, deferred: bool = False) -> None:
        client = s3_client(endpoint)
        self.log = RequestLog(client)
        # deferred: the root listing rebuilt by a message on the queue, as the stack has it
        # (no delay here, so the drain takes it too)
        rebuilds = SqsRootRebuilds(aws.resources.queue_url, aws.sqs) if deferred else None
        self.indexer = Indexer(
            S3Store(aws.resources.bucket, client), workers=4, rebuilds=rebuilds, root_delay=0
        )
        self.calls: list[dict[str, Any]] = []
        self.rebuilds = 0  # rebuild messages handled
        self.poller = WindowedPoller(
            aws.sqs, aws.resources, self.invoke, wait_seconds=0, batch_size=10, window_s=0.2
        )

    def invoke(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from skypi.indexer.events import decode_notification

        response = process(event, self.indexer)
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        records = [r for r in event["Records"] if r["body"] != ROOT_REBUILD_MESSAGE]
        self.rebuilds += len(event["Records"]) - len(records)
        self.calls.append(
            {
                "returned": 0.0,
                "keys": [c.key for r in records for c in decode_notification(r["body"]).changes],
                "failed_keys": [
                    c.key
                    for r in records
                    if r["messageId"] in failed
                    for c in decode_notification(r["body"]).changes
                ],
            }
        )
        return response


@pytest.mark.parametrize("deferred", [False, True], ids=["listing-in-batch", "listing-deferred"])
def test_a_burst_into_few_projects_is_listed_whole(
    aws: Emulated, moto_endpoint: str, deferred: bool
) -> None:
    """Three environments take 32 drops into 4 projects: the same pages are contended (each
    project's, the root listing, the landing page), and every drop ends up listed with its
    SHA-256 in its JSON and HTML pages, each message handled once, none left in the queues;
    the root listing is written only when a project appears, however many batches race it
    (deferred: only by the rebuilds, which list every project in the end)."""
    aws.sqs.set_queue_attributes(  # no batch comes back while another still holds it
        QueueUrl=aws.resources.queue_url, Attributes={"VisibilityTimeout": "120"}
    )
    environments = [Environment(aws, moto_endpoint, deferred) for _ in range(ENVIRONMENTS)]
    files = burst_files(PROJECTS, PER_PROJECT)
    dropped = drop_all(aws.drop, files)
    assert len(dropped) == len(files)

    def drain(environment: Environment) -> None:
        environment.poller.drain(quiet_rounds=3)

    threads = [threading.Thread(target=drain, args=(e,)) for e in environments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads)

    assert unlisted(aws.page, files) == []
    calls = [call for e in environments for call in e.calls]
    assert sorted(listed_at(calls)) == sorted(dropped)  # each drop handled, none failed
    assert sorted(k for call in calls for k in call["keys"]) == sorted(dropped)  # once each
    for queue in (aws.resources.queue_url, aws.resources.dead_letter_queue_url):
        attributes = aws.sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert set(attributes.values()) == {"0"}
    stored: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for environment in environments:
        stored.update(environment.log.stored)
        lost.update(environment.log.lost)
    assert 1 <= stored[ROOT_JSON_KEY] <= PROJECTS
    if deferred:
        rebuilds = sum(e.rebuilds for e in environments)
        assert 1 <= stored[ROOT_JSON_KEY] <= rebuilds <= len(calls)
        root = RootListing.from_json_bytes(aws.page(ROOT_JSON_KEY))
        assert len(root.projects) == PROJECTS
        assert list(aws.store.list("pending/")) == []
    # once per call, and again by a call whose listing was replaced while it wrote what
    # follows it (the landing page's count then follows the newer listing)
    assert 1 <= stored[LANDING_KEY] <= len(calls) + stored[ROOT_JSON_KEY]
    shared = {"project page", "root listing", "landing page", "release description"}
    shared |= {"root rebuild due", "pending root entry"}  # created once per window; kept if new
    assert {kind.split(" ", 1)[1] for kind in lost} <= shared  # races only where writers share
