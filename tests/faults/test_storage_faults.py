"""Storage faults under a workload of uploads, drop-ins, yanks and deletes, on a folder and on
S3 (moto): faults at a few percent, then none until the queue drains; then the index holds
every invariant (``workload.check_index``) and its DLQ is empty.

Seeded (``SKYPI_FAULT_SEED``); ``SKYPI_FAULTS_LONG=1`` runs ten times the operations. The
counts (operations, faults by kind, retries, drift) are printed at the end of the run.
"""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.endpoint
import pytest

from skypi.api.publish import Uploader
from skypi.indexer import handler as indexer_handler
from skypi.indexer.service import Indexer
from skypi.local.emulator import LambdaContext, Resources, provision, sqs_event
from skypi.local.startup import reconcile
from skypi.local.watch import FolderWatcher
from skypi.store.rebuilds import SqsRootRebuilds
from skypi.store.s3 import S3Store
from tests.emulated import CREDENTIALS, s3_client
from tests.faults.injector import S3_KINDS, BotocoreFaults, Faults, FullDisk
from tests.faults.report import RUNS
from tests.faults.workload import Workload, check_index

SEED = int(os.environ.get("SKYPI_FAULT_SEED", "21"))
LONG = bool(os.environ.get("SKYPI_FAULTS_LONG"))
STEPS = 600 if LONG else 60  # on the folder
STEPS_S3 = 400 if LONG else 35  # each costs ~20 requests to moto, retries included
RATE = 0.03  # of each kind, per request (on S3, the four kinds together: 12 %)
MINIMUM = 2  # faults of each kind a run must inject at least
KILLS = 3  # invocations stopped dead part-way
ROOT = Path(__file__).parents[2]
MAX_UPLOAD = 10 * 1024 * 1024


def max_receive_count() -> int:
    """The queue's redrive threshold, as the stack sets it (read, not imported: importing the
    CDK app starts node)."""
    tree = ast.parse((ROOT / "infra" / "indexer.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == (
            "MAX_RECEIVE_COUNT"
        ):
            return int(ast.literal_eval(node.value))
    raise AssertionError("infra/indexer.py sets no MAX_RECEIVE_COUNT")


@dataclass
class Tally:
    path: str
    faults: Faults
    kills: int = 0
    retries: int = 0  # invocations or batches run again after a failure
    extra: Counter[str] = field(default_factory=Counter)

    def summary(self, work: Workload, drift: int, refused: int) -> str:
        injected = dict(sorted(self.faults.injected.items())) | {"killed": self.kills}
        return (
            f"[{self.path}] seed {SEED}: operations {dict(sorted(work.done.items()))}, "
            f"failed {dict(sorted(work.failed.items()))}; storage requests "
            f"{sum(self.faults.requests.values())}; injected {injected}; retries "
            f"{self.retries} {dict(self.extra)}; refused files named by reindex --check "
            f"{refused}; drift {drift}"
        )


def _child(args: list[str], stdin: str = "", env: dict[str, str] | None = None) -> int:
    environment = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.child", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode in {0, -9}, done.stderr[-3000:]
    return done.returncode


# -- the folder ------------------------------------------------------------------------------


class SettlingWatcher(FolderWatcher):
    """The real watcher, telling when it has nothing pending and no batch in hand."""

    busy = False
    batches = 0

    def _next_batch(self) -> tuple[list[str], bool] | None:
        with self._lock:  # a Condition over an RLock: waiting inside releases it
            self.busy = False
            batch = super()._next_batch()
            self.busy = batch is not None
            self.batches += batch is not None
            return batch

    def settled(self) -> bool:
        with self._lock:
            return not self._pending and not self._rescan and not self.busy


def _wait_settled(watcher: SettlingWatcher, deadline: float) -> None:
    quiet = 0
    while quiet < 5:  # inotify may still deliver events of the last writes
        assert time.monotonic() < deadline, "the watcher did not settle"
        time.sleep(0.1)
        quiet = quiet + 1 if watcher.settled() else 0


def _start(store: FullDisk, indexer: Indexer, tally: Tally) -> SettlingWatcher:
    """``skypi serve`` starting: the start-up pass (again, if it fails), then the watcher."""
    while True:
        try:
            reconcile(store, indexer)
            break
        except OSError:
            tally.retries += 1
            tally.extra["start-up passes"] += 1
    watcher = SettlingWatcher(store, indexer)
    watcher.start()
    return watcher


def test_a_folder_under_full_disks_and_killed_processes(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    faults = Faults(SEED, {"enospc": RATE})
    store = FullDisk(folder, faults)
    indexer = Indexer(store)
    tally = Tally("folder", faults)

    def drop(key: str, data: bytes) -> None:  # `cp` into the folder
        path = folder / key.removeprefix("packages/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    rng = random.Random(SEED)
    work = Workload(rng, Uploader(store, indexer, MAX_UPLOAD), drop)
    kill_steps = set(rng.sample(range(5, STEPS), KILLS))
    watcher = _start(store, indexer, tally)
    batches = 0
    try:
        for i in range(STEPS):
            work.step(i)
            if i in kill_steps:  # serve stopped dead at a write of its start-up, restarted
                watcher.stop()
                batches += watcher.batches
                work._drop(i + STEPS)  # something for the start-up pass to write
                tally.kills += _child(["serve", str(rng.randint(1, 3)), str(folder)]) == -9
                watcher = _start(store, indexer, tally)
        faults.enabled = False
        work.send_again()
        _wait_settled(watcher, time.monotonic() + 45)
    finally:
        watcher.stop()
    tally.extra["watcher batches"] = batches + watcher.batches
    _finish(store, work, tally)


def _finish(store: Any, work: Workload, tally: Tally) -> None:
    report = check_index(store, work)
    RUNS.append(tally.summary(work, len(report.drift), len(report.set_aside)))
    for kind, count in tally.faults.rates.items():
        assert tally.faults.injected[kind] >= MINIMUM, f"only {count} faults of kind {kind}"
    assert tally.kills >= KILLS, f"only {tally.kills} invocations were stopped part-way"


# -- S3, SQS and the indexer Lambda (moto) ---------------------------------------------------


@dataclass
class LambdaQueue:
    """Lambda's SQS event source mapping: batches of up to 10, messages deleted when the
    handler succeeded for them; failures (reported in ``batchItemFailures``, raised, or an
    invocation stopped at its timeout) come back after the visibility timeout, and go to the
    dead-letter queue after ``maxReceiveCount`` receives (moto applies the redrive policy)."""

    sqs: Any
    resources: Resources
    indexer: Indexer
    env: dict[str, str]
    tally: Tally

    def invoke(self, kill_at: int | None = None) -> int:
        received = self.sqs.receive_message(
            QueueUrl=self.resources.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return 0
        self.tally.retries += sum(
            int(m["Attributes"]["ApproximateReceiveCount"]) > 1 for m in received
        )
        event = sqs_event(received, self.resources)
        if kill_at is not None:
            return self._in_child(event, received, kill_at)
        indexer_handler._indexer = self.indexer
        try:
            answer = indexer_handler.handler(event, LambdaContext())
        except Exception:
            return len(received)  # the whole batch comes back
        self._delete(received, answer)
        return len(received)

    def _in_child(self, event: dict[str, Any], received: list[Any], kill_at: int) -> int:
        process = subprocess.run(
            [sys.executable, "-m", "tests.faults.child", "lambda", str(kill_at)],
            input=json.dumps(event),
            capture_output=True,
            text=True,
            env={**os.environ, **self.env, "PYTHONPATH": os.pathsep.join(sys.path)},
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        if process.returncode == -9:
            self.tally.kills += 1
            return len(received)  # in flight until the visibility timeout passes
        assert process.returncode == 0, process.stderr[-3000:]
        self._delete(received, json.loads(process.stdout.strip().splitlines()[-1]))
        return len(received)

    def _delete(self, received: list[Any], answer: Any) -> None:
        failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
        self.tally.extra["records reported failed"] += len(failed)
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.resources.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )

    def waiting(self, queue_url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    def drain(self, deadline: float) -> None:
        while self.waiting():
            assert time.monotonic() < deadline, "the queue did not drain"
            if not self.invoke():
                time.sleep(0.2)  # in flight: back after the visibility timeout


class _ShortBackoff:
    """botocore's retries as they are, with their waits cut to a twentieth (the run is about
    what the retries do, not how long they wait)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds / 20)


@pytest.fixture
def emulated(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    bucket = f"skypi-{uuid.uuid4().hex[:12]}"
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
        "SKYPI_BUCKET": bucket,
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(indexer_handler, "_indexer", None)
    monkeypatch.setattr(botocore.endpoint, "time", _ShortBackoff())
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, **CREDENTIALS)
    user = s3_client(moto_endpoint)  # `aws s3 cp`: no faults on the user's side
    resources = provision(user, sqs, bucket, visibility_timeout=1)
    redrive = json.dumps(
        {"deadLetterTargetArn": _arn(sqs, resources), "maxReceiveCount": str(max_receive_count())}
    )
    sqs.set_queue_attributes(QueueUrl=resources.queue_url, Attributes={"RedrivePolicy": redrive})
    sqs.purge_queue(QueueUrl=resources.queue_url)
    return sqs, user, resources, env, moto_endpoint


def _arn(sqs: Any, resources: Resources) -> str:
    attributes = sqs.get_queue_attributes(
        QueueUrl=resources.dead_letter_queue_url, AttributeNames=["QueueArn"]
    )
    return str(attributes["Attributes"]["QueueArn"])


@pytest.mark.parametrize("deferred", [False, True], ids=["listing-in-batch", "listing-deferred"])
def test_s3_under_errors_throttling_timeouts_resets_and_killed_invocations(
    emulated: tuple[Any, ...], deferred: bool
) -> None:
    """``deferred``: the root listing rebuilt by a message on the queue, as the stack has it
    (no delay; the killed invocations' children write it in their batch)."""
    sqs, user, resources, env, endpoint = emulated
    faults = Faults(SEED, dict.fromkeys(S3_KINDS, RATE))
    tally = Tally("s3" + (", listing deferred" if deferred else ""), faults)
    api_client, lambda_client = s3_client(endpoint), s3_client(endpoint)  # two processes
    BotocoreFaults(faults, api_client)
    BotocoreFaults(faults, lambda_client)
    api = S3Store(resources.bucket, api_client)
    rebuilds = SqsRootRebuilds(resources.queue_url, sqs) if deferred else None
    indexer = Indexer(S3Store(resources.bucket, lambda_client), rebuilds=rebuilds, root_delay=0)
    queue = LambdaQueue(sqs, resources, indexer, env, tally)

    def drop(key: str, data: bytes) -> None:
        user.put_object(Bucket=resources.bucket, Key=key, Body=data)

    rng = random.Random(SEED)
    uploader = Uploader(api, Indexer(api, rebuilds=rebuilds, root_delay=0), MAX_UPLOAD)
    work = Workload(rng, uploader, drop)
    kill_steps = set(rng.sample(range(5, STEPS_S3), KILLS))
    for i in range(STEPS_S3):
        work.step(i)
        if i in kill_steps:
            work._drop(i + STEPS_S3)  # something for the stopped invocation to do
            queue.invoke(kill_at=rng.randint(1, 4))
        elif rng.random() < 0.6:
            queue.invoke()
    faults.enabled = False
    work.send_again()
    queue.drain(time.monotonic() + 45)
    assert queue.waiting(resources.dead_letter_queue_url) == 0, "records went to the DLQ"
    assert list(api.list("pending/")) == []  # every rebuild asked for ran to its end
    _finish(api, work, tally)
