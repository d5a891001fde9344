"""The indexer Lambda over S3 events that SQS delivers (moto server), run by the poller."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from skypi.core.pages import ProjectPage, RootListing
from skypi.indexer.events import MalformedMessage, decode_notification
from skypi.indexer.service import Gone, Indexer, Landed
from skypi.local.emulator import LambdaContext
from tests.aws.conftest import Emulated
from tests.dists import metadata_text, poisoned, sdist_bytes, sdist_name, wheel_bytes, wheel_name
from tests.emulated import FaultInjector, RequestCounter

EVENTS = Path(__file__).parents[2] / "events"


def _listed(aws: Emulated, project: str) -> set[str]:
    page = ProjectPage.from_json_bytes(aws.page(f"simple/{project}/index.json"))
    html = aws.page(f"simple/{project}/index.html").decode()
    names = {f.filename for f in page.files}
    assert all(f">{n}</a>" in html for n in names)
    assert html.count("</a>") == len(names)
    return names


# -- decoding, from the sample events -------------------------------------------------------


def test_sample_events_decode() -> None:
    def bodies(name: str) -> list[str]:
        return [r["body"] for r in json.loads((EVENTS / name).read_text())["Records"]]

    created = decode_notification(bodies("sqs-s3-object-created.json")[0])
    assert created.changes == [Landed("packages/demo/demo-1.0+local-py3-none-any.whl")]
    removed = decode_notification(bodies("sqs-s3-object-removed.json")[0])
    assert removed.changes == [Gone("packages/demo/demo-1.0+local-py3-none-any.whl")]
    test_event = decode_notification(bodies("sqs-s3-test-event.json")[0])
    assert (test_event.changes, test_event.skipped[0][0]) == ([], "s3:TestEvent")
    mixed = [decode_notification(b) for b in bodies("sqs-s3-mixed-batch.json")]
    assert mixed[2].skipped == [("simple/demo/index.json", "outside packages/")]
    assert mixed[3].changes[0].key.endswith("manylinux_2_28_x86_64.whl")


@pytest.mark.parametrize(
    "body", ["not json", "[]", '{"Event": "s3:Other"}', '{"Records": [{"eventName": "x"}]}']
)
def test_malformed_messages_are_refused(body: str) -> None:
    with pytest.raises(MalformedMessage):
        decode_notification(body)


# -- the data path: S3 event -> SQS -> handler -> pages -------------------------------------


def test_dropped_file_is_indexed_and_removed(aws: Emulated) -> None:
    key = "packages/demo/" + wheel_name("demo", "1.0+local")
    aws.drop(key, wheel_bytes("demo", "1.0+local"))
    assert aws.poller.drain() == 1
    assert _listed(aws, "demo") == {wheel_name("demo", "1.0+local")}
    assert RootListing.from_json_bytes(aws.page("simple/index.json")).projects == {"demo": "demo"}
    assert aws.store.head(key + ".metadata") is not None
    aws.s3.delete_object(Bucket=aws.resources.bucket, Key=key)
    assert aws.poller.drain() == 1
    assert _listed(aws, "demo") == set()
    assert RootListing.from_json_bytes(aws.page("simple/index.json")).projects == {}


def test_a_batch_writes_each_project_page_once(aws: Emulated) -> None:
    for version in ("1.0", "1.1", "1.2"):
        aws.drop(f"packages/alpha/{wheel_name('alpha', version)}", wheel_bytes("alpha", version))
    aws.drop(f"packages/beta/{sdist_name('beta', '2.0')}", sdist_bytes("beta", "2.0"))
    aws.drop("simple/ignored.txt", b"not ours")  # outside the notification's prefix
    from skypi.indexer import handler

    handler._indexer = aws.indexer
    counter = RequestCounter(aws.s3)
    original_put = aws.store.put
    page_writes: list[str] = []

    def counting_put(key: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if key.startswith("simple/") and key.endswith("/index.json"):
            page_writes.append(key)
        return original_put(key, *args, **kwargs)  # type: ignore[arg-type]

    aws.store.put = counting_put  # type: ignore[method-assign]
    received = aws.sqs.receive_message(
        QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    while len(received) < 4:
        received += aws.sqs.receive_message(
            QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
    from skypi.local.emulator import sqs_event

    response = handler.handler(sqs_event(received, aws.resources), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert sorted(page_writes) == [
        "simple/alpha/index.json",
        "simple/beta/index.json",
        "simple/index.json",  # once for the batch, though two projects appeared
    ]
    assert len(_listed(aws, "alpha")) == 3
    # The bucket is never listed: only the views' folders (ListObjectsV2 with a delimiter),
    # once per project new here, whose stored view pages the private name takes over.
    listed = [prefix for op, prefix in counter.requests if op == "ListObjectsV2"]
    assert listed == ["views/", "views/"]  # alpha and beta are new


def test_only_the_failing_projects_messages_are_retried(
    aws: Emulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws.drop(f"packages/good/{wheel_name('good', '1.0')}", wheel_bytes("good", "1.0"))
    aws.drop(f"packages/flaky/{wheel_name('flaky', '1.0')}", wheel_bytes("flaky", "1.0"))
    aws.sqs.send_message(QueueUrl=aws.resources.queue_url, MessageBody="garbage")
    original = Indexer._apply_project
    failures = {"left": 1}

    def apply_failing_once(self: Indexer, project, changes):  # type: ignore[no-untyped-def]
        if failures["left"] and project == "flaky":
            failures["left"] -= 1
            raise RuntimeError("S3 went away")
        return original(self, project, changes)

    monkeypatch.setattr(Indexer, "_apply_project", apply_failing_once)
    # Long enough that the failed message cannot come back while the queue is drained, even
    # on a loaded machine (with 2 s it sometimes did, and was counted twice).
    aws.sqs.set_queue_attributes(
        QueueUrl=aws.resources.queue_url, Attributes={"VisibilityTimeout": "8"}
    )
    assert aws.poller.drain() == 1 + 0  # good; flaky failed; garbage failed
    assert _listed(aws, "good") == {wheel_name("good", "1.0")}
    assert aws.store.head("simple/flaky/index.json") is None
    # After the visibility timeout the failed message comes back, and succeeds this time.
    deadline = time.monotonic() + 20
    while not aws.poller.poll_once() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _listed(aws, "flaky") == {wheel_name("flaky", "1.0")}
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.resources.queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"  # the garbage, in flight


def test_replayed_and_shuffled_events_give_the_same_pages(aws: Emulated) -> None:
    keys = []
    for project, version in [("alpha", "1.0"), ("alpha", "2.0"), ("beta", "0.1"), ("gamma", "3")]:
        key = f"packages/{project}/{wheel_name(project, version)}"
        aws.drop(key, wheel_bytes(project, version))
        keys.append(key)
    aws.poller.drain()
    aws.s3.delete_object(Bucket=aws.resources.bucket, Key=keys[2])
    aws.poller.drain()
    expected = {i.key: aws.page(i.key) for i in aws.store.list("simple/")}
    assert "simple/beta/index.json" in expected
    events = [Landed(k) for k in keys] + [Gone(keys[2])]
    replay = events * 2
    random.Random(8).shuffle(replay)
    for change in replay:
        aws.indexer.apply([change])
    aws.indexer.apply(replay)
    assert {i.key: aws.page(i.key) for i in aws.store.list("simple/")} == expected


def test_an_overwrite_in_place_is_undone_and_reported(aws: Emulated) -> None:
    key = f"packages/demo/{wheel_name('demo', '1.0')}"
    original = wheel_bytes("demo", "1.0")
    aws.drop(key, original)
    aws.poller.drain()
    before = aws.page("simple/demo/index.json")
    aws.drop(key, wheel_bytes("demo", "1.0", payload=b"an impostor"))
    outcome = aws.indexer.apply([Landed(key)])
    assert outcome.conflicts
    assert "restored" in outcome.conflicts[0][1]
    assert aws.store.get(key)[1] == original
    aws.poller.drain()  # the events of the overwrite and of the restore change nothing
    assert aws.page("simple/demo/index.json") == before


def test_an_overwrite_whose_earlier_version_is_gone_lists_the_stored_bytes(
    aws: Emulated, caplog: pytest.LogCaptureFixture
) -> None:
    """``aws s3 cp`` over a listed key, once its earlier version has expired (the bucket's
    noncurrent-version lifecycle): nothing can be put back, so, as in a folder and as
    ``skypi reindex`` does, the page lists the stored bytes (with a WARNING naming both
    hashes), its ``.metadata`` and HTML made again; pip's hash check passes."""
    key = f"packages/demo/{wheel_name('demo', '1.0')}"
    original = wheel_bytes("demo", "1.0")
    aws.drop(key, original)
    aws.poller.drain()
    meta = metadata_text("demo", "1.0", summary="Rebuilt in place")
    data = wheel_bytes("demo", "1.0", payload=b"rebuilt", metadata=meta)
    aws.drop(key, data)
    versions = aws.s3.list_object_versions(Bucket=aws.resources.bucket, Prefix=key)["Versions"]
    for version in versions:
        if not version["IsLatest"]:  # what the lifecycle rule does after its days
            aws.s3.delete_object(
                Bucket=aws.resources.bucket, Key=key, VersionId=version["VersionId"]
            )
    caplog.set_level(logging.WARNING)
    aws.poller.drain()  # the overwrite's own event, through the queue and the handler
    new, old = hashlib.sha256(data).hexdigest(), hashlib.sha256(original).hexdigest()
    page = ProjectPage.from_json_bytes(aws.page("simple/demo/index.json"))
    assert [(f.key, f.sha256, f.size) for f in page.files] == [(key, new, len(data))]
    assert aws.store.get(key)[1] == data
    assert aws.page(key + ".metadata") == meta.encode()
    assert f"sha256={new}" in aws.page("simple/demo/index.html").decode()
    assert any(old in r.getMessage() and new in r.getMessage() for r in caplog.records)
    aws.poller.drain()
    assert ProjectPage.from_json_bytes(aws.page("simple/demo/index.json")).files == page.files


def test_indexing_converges_through_throttling_and_server_errors(aws: Emulated) -> None:
    faults = FaultInjector(aws.s3, every=3, status=503)
    for version in ("1.0", "1.1"):
        aws.drop(f"packages/demo/{wheel_name('demo', version)}", wheel_bytes("demo", version))
    faults.status = 500
    aws.indexer.apply([Landed(f"packages/demo/{wheel_name('demo', v)}") for v in ("1.0", "1.1")])
    assert faults.injected > 3
    assert _listed(aws, "demo") == {wheel_name("demo", v) for v in ("1.0", "1.1")}


def test_lambda_handler_reads_its_configuration_from_the_environment(aws: Emulated) -> None:
    event = json.loads((EVENTS / "sqs-s3-object-created.json").read_text())
    from skypi.indexer import handler

    key = "packages/demo/demo-1.0+local-py3-none-any.whl"
    aws.drop(key, wheel_bytes("demo", "1.0+local"))
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert _listed(aws, "demo") == {wheel_name("demo", "1.0+local")}


def test_indexer_handler_does_not_import_fastapi() -> None:
    heavy = "{'fastapi', 'starlette', 'pydantic', 'mangum'}"
    code = f"import sys, skypi.indexer.handler; print(sorted(set(sys.modules) & {heavy}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_drop_in_too_big_to_hash_in_time_is_refused_not_retried_forever(
    aws: Emulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file copied in without a SHA-256 checksum is hashed inside the invocation; one that
    cannot be hashed before the invocation ends would time out, come back five times and land
    in the dead-letter queue. It is refused instead, saying how far hashing got and how to
    publish it so storage holds its SHA-256."""
    from skypi.indexer import handler

    key = f"packages/demo/{wheel_name('demo', '9.0')}"
    aws.drop(key, wheel_bytes("demo", "9.0", payload=b"x" * (3 * 1024 * 1024)))
    monkeypatch.setattr(handler, "HASH_MARGIN_SECONDS", 10**6)  # no time left to hash
    assert aws.poller.drain() == 1  # handled: no batch item failure, nothing to retry
    assert aws.store.head("simple/demo/index.json") is None  # not listed
    aws.indexer.hash_deadline = 0.0  # long past: the same refusal, with its reason
    outcome = aws.indexer.apply([Landed(key)])
    ((refused_key, message),) = outcome.refused
    assert refused_key == key
    assert "ran out of time after" in message
    assert "--checksum-algorithm SHA256" in message
    assert "skypi publish" in message


def test_an_overwrite_too_big_to_hash_in_time_is_still_undone(aws: Emulated) -> None:
    """Whether the new bytes equal the old cannot be learnt in time: restoring the original
    is safe either way, where failing the batch would retry it into the dead-letter queue."""
    key = f"packages/demo/{wheel_name('demo', '9.1')}"
    original = wheel_bytes("demo", "9.1")
    aws.drop(key, original)
    aws.indexer.apply([Landed(key)])
    aws.drop(key, wheel_bytes("demo", "9.1", payload=b"an impostor"))
    aws.indexer.hash_deadline = 0.0
    outcome = aws.indexer.apply([Landed(key)])
    assert "restored" in outcome.conflicts[0][1]
    assert aws.store.get(key)[1] == original


def test_a_poisoned_archive_is_set_aside_not_retried_and_the_batch_goes_on(
    aws: Emulated,
) -> None:
    """Hand-made archives that once crashed (or hung) the reader, in one batch with a good
    file: none is reported in batchItemFailures (retrying cannot help: they would end in the
    dead-letter queue), and the good file is listed."""
    from skypi.indexer import handler
    from skypi.local.emulator import sqs_event

    bad = [f"bad{number}" for number in range(len(poisoned("bad", "1.0")))]
    for project, case in zip(bad, sorted(poisoned("bad", "1.0")), strict=True):
        filename, data = poisoned(project, "1.0")[case]
        aws.drop(f"packages/{project}/{filename}", data)
    aws.drop(f"packages/good/{wheel_name('good', '1.0')}", wheel_bytes("good", "1.0"))
    handler._indexer = aws.indexer
    received: list[dict[str, object]] = []
    while len(received) < len(bad) + 1:
        received += aws.sqs.receive_message(
            QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
    response = handler.handler(sqs_event(received, aws.resources), LambdaContext())
    assert response == {"batchItemFailures": []}
    assert _listed(aws, "good") == {wheel_name("good", "1.0")}
    assert all(aws.store.head(f"simple/{project}/index.json") is None for project in bad)


# -- the root listing, rebuilt later (skypi.indexer.deferred) -------------------------------


def _defer(aws: Emulated, monkeypatch: pytest.MonkeyPatch, delay: int) -> None:
    """The handler configured as the stack configures it: its queue and the delay."""
    monkeypatch.setenv("SKYPI_INDEX_QUEUE_URL", aws.resources.queue_url)
    monkeypatch.setenv("SKYPI_ROOT_DELAY_SECONDS", str(delay))


def _root(aws: Emulated) -> set[str]:
    if aws.store.head("simple/index.json") is None:
        return set()
    return set(RootListing.from_json_bytes(aws.page("simple/index.json")).projects)


def test_a_burst_of_new_projects_waits_for_one_delayed_rebuild(
    aws: Emulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS keeps a message sent with DelaySeconds invisible until then (up to 900 s): the
    drops are indexed and served at once, the listing waits for the one rebuild asked for."""
    from skypi.core.constants import ROOT_REBUILD_MESSAGE
    from skypi.indexer import handler as indexer_handler

    _defer(aws, monkeypatch, 900)
    names = ("one", "two", "three")
    for name in names:
        aws.drop(f"packages/{name}/{wheel_name(name, '1.0')}", wheel_bytes(name, "1.0"))
        aws.poller.drain()  # one batch each
    assert all(_listed(aws, n) == {wheel_name(n, "1.0")} for n in names)
    assert _root(aws) == set()
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.resources.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    # what Lambda hands over when the delay is past: the rebuild, as its own record
    event = {"Records": [{"messageId": "m-1", "body": ROOT_REBUILD_MESSAGE}]}
    indexer = indexer_handler._indexer
    assert indexer is not None
    assert indexer_handler.process(event, indexer) == {"batchItemFailures": []}
    assert _root(aws) == set(names)
    assert list(aws.store.list("pending/")) == []


def test_a_rebuild_with_no_delay_is_received_by_the_poller(
    aws: Emulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    _defer(aws, monkeypatch, 0)
    aws.drop(f"packages/quick/{wheel_name('quick', '1.0')}", wheel_bytes("quick", "1.0"))
    assert aws.poller.drain() == 2  # the drop, then the rebuild it asked for
    assert _root(aws) == {"quick"}


def test_a_failed_rebuild_is_retried(aws: Emulated, monkeypatch: pytest.MonkeyPatch) -> None:
    from skypi.core.constants import ROOT_REBUILD_MESSAGE
    from skypi.indexer import handler as indexer_handler

    _defer(aws, monkeypatch, 900)
    aws.drop(f"packages/later/{wheel_name('later', '1.0')}", wheel_bytes("later", "1.0"))
    aws.poller.drain()
    indexer = indexer_handler._indexer
    assert indexer is not None

    def broken() -> None:
        raise OSError("S3 is down")

    monkeypatch.setattr(indexer, "rebuild_root", broken)
    event = {"Records": [{"messageId": "m-1", "body": ROOT_REBUILD_MESSAGE}]}
    assert indexer_handler.process(event, indexer) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
