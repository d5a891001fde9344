"""A burst of drop-ins on the emulated AWS path, with the stack's own SQS settings.

The settings are read from the synthesized template (``bench/synth.py``, as the tests read
it): the indexer's event source mapping (batch size, maximum batching window, its
``ScalingConfig.MaximumConcurrency``), its queue's visibility timeout, the function's timeout
and reserved concurrency. The concurrency is modelled, and stated: the event source's maximum
concurrency when the stack sets one, otherwise the five concurrent batches Lambda starts a
standard queue with (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html;
it adds up to 300 more per minute while messages remain, more than a burst of seconds sees),
within the function's reserved concurrency.

Each concurrent invocation is one execution environment: a process of its own running the real
indexer handler (``skypi.indexer.handler.handler``, its indexer built from the environment as
on Lambda) behind :class:`WindowedPoller`, which gathers a batch as Lambda's poller does: up to
the batch size, for at most the batching window, which begins when the previous invocation
completes (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html).
moto serves S3 and SQS from a process of its own (``skypi dev``'s ``start_moto``), so the
emulated AWS and the environments spread over the machine's cores. Drops are plain PUTs, as
``aws s3 cp`` makes them; S3 sends their events to the queue.

A drop counts as listed when the invocation that handled its message returned: the project's
pages are written before the root listing and the landing page, so this is an upper bound on
when its page lists it. Afterwards every project page is read back: every dropped file must be
listed, with its SHA-256, in the JSON page and the HTML page, and every project in the root
listing (asserted). Each environment counts its S3 requests by operation and key family, and
the conditional writes storage refused (412: a compare-and-swap lost to another environment).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.dists import wheel_bytes, wheel_name
from bench.peers import cpu_seconds
from bench.s3cost import RequestLog
from bench.synth import only_resource
from skypi.core.constants import ROOT_QUEUE_VARIABLE, ROOT_REBUILD_MESSAGE
from skypi.core.keys import page_html_key, page_json_key
from skypi.local.emulator import BATCH_SIZE, Handler, Poller, Resources

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

ROOT = Path(__file__).resolve().parents[1]
INDEXER_HANDLER = "skypi.indexer.handler.handler"
# Lambda's documented rules, for what the template leaves to them
# (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html)
DEFAULT_BATCH_SIZE = 10
DEFAULT_BATCHING_WINDOW_S = 0
# https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
LAMBDA_FIRST_BATCHES = 5
POLL_PAUSE_S = 0.05  # between empty receives while a batching window is open
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# -- the stack's settings ----------------------------------------------------------------


@dataclass(frozen=True)
class QueueSettings:
    """How the stack has Lambda take the indexer's events from SQS."""

    batch_size: int
    batching_window_s: int
    max_concurrency: int | None  # the event source's ScalingConfig (None: Lambda's scaling)
    visibility_timeout_s: int
    function_timeout_s: int
    reserved_concurrency: int | None

    @property
    def concurrency(self) -> int:
        """The concurrent invocations modelled (see the module's docstring)."""
        modelled = self.max_concurrency or LAMBDA_FIRST_BATCHES
        return min(modelled, self.reserved_concurrency or modelled)

    @property
    def concurrency_reason(self) -> str:
        if self.max_concurrency:
            return "the event source's maximum concurrency"
        return "no maximum concurrency is set: Lambda's first five concurrent batches"


def indexer_queue_settings(template: Mapping[str, Any]) -> QueueSettings:
    """The indexer's SQS settings in a synthesized template."""
    resources: Mapping[str, Any] = template["Resources"]
    function, _ = only_resource(
        template,
        "AWS::Lambda::Function",
        lambda _, r: r["Properties"].get("Handler") == INDEXER_HANDLER,
    )
    _, found = only_resource(
        template,
        "AWS::Lambda::EventSourceMapping",
        lambda _, r: r["Properties"].get("FunctionName") == {"Ref": function},
    )
    mapping = found["Properties"]
    queue = resources[mapping["EventSourceArn"]["Fn::GetAtt"][0]]
    assert queue["Type"] == "AWS::SQS::Queue", queue["Type"]
    properties = resources[function]["Properties"]
    return QueueSettings(
        batch_size=int(mapping.get("BatchSize", DEFAULT_BATCH_SIZE)),
        batching_window_s=int(
            mapping.get("MaximumBatchingWindowInSeconds", DEFAULT_BATCHING_WINDOW_S)
        ),
        max_concurrency=mapping.get("ScalingConfig", {}).get("MaximumConcurrency"),
        visibility_timeout_s=int(queue["Properties"].get("VisibilityTimeout", 30)),
        function_timeout_s=int(properties.get("Timeout", 3)),
        reserved_concurrency=properties.get("ReservedConcurrentExecutions"),
    )


# -- Lambda's poller ----------------------------------------------------------------------


class WindowedPoller(Poller):
    """Lambda's SQS poller for one execution environment: it gathers up to ``batch_size``
    messages for at most ``window_s`` seconds, a window that begins when the previous
    invocation completes; an idle poller long-polls and invokes with what arrives."""

    def __init__(
        self, *args: Any, batch_size: int = BATCH_SIZE, window_s: float = 0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.batch_size = batch_size
        self.window_s = window_s
        self.window_ends = 0.0
        self.first_received = 0.0  # time.time() when the batch's first message came

    def receive(self, limit: int = BATCH_SIZE, wait: int | None = None) -> list[MessageTypeDef]:
        batch: list[MessageTypeDef] = []
        while len(batch) < self.batch_size:
            want = min(self.batch_size - len(batch), limit)
            window_open = time.monotonic() < self.window_ends
            got = super().receive(want, 0 if window_open else wait)
            if got and not batch:
                self.first_received = time.time()
            batch += got
            if not window_open:
                break
            if not got:
                time.sleep(POLL_PAUSE_S)
        return batch

    def poll_once(self) -> int:
        handled = super().poll_once()
        self.window_ends = time.monotonic() + self.window_s
        return handled


# -- the burst ----------------------------------------------------------------------------


def project_name(i: int) -> str:
    return f"burst-{i:03d}"


def burst_files(projects: int, per_project: int) -> list[tuple[str, bytes]]:
    """(key, bytes) of ``per_project`` wheels of each project, in key order, as
    ``aws s3 cp --recursive`` or ``aws s3 sync`` of a folder of projects puts them."""
    files = []
    for p in range(projects):
        for v in range(per_project):
            name, version = project_name(p), f"1.0.{v}"
            files.append(
                (f"packages/{name}/{wheel_name(name, version)}", wheel_bytes(name, version))
            )
    return files


def drop_all(
    put: Callable[[str, bytes], object], files: list[tuple[str, bytes]], threads: int = 8
) -> dict[str, float]:
    """Put every file, ``threads`` at a time; when each PUT returned (``time.time()``)."""

    def one(item: tuple[str, bytes]) -> tuple[str, float]:
        put(*item)
        return item[0], time.time()

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, files))


def unlisted(read: Callable[[str], bytes], files: list[tuple[str, bytes]]) -> list[str]:
    """Each dropped file that its project's JSON or HTML page does not list with its SHA-256,
    and each project the root listing lacks."""
    from skypi.core.pages import ProjectPage, RootListing

    missing: list[str] = []
    projects = sorted({key.split("/")[1] for key, _ in files})
    pages = {p: ProjectPage.from_json_bytes(read(page_json_key(p))) for p in projects}
    html = {p: read(page_html_key(p)).decode() for p in projects}
    for key, data in files:
        project, filename = key.split("/")[1:]
        digest = hashlib.sha256(data).hexdigest()
        entry = pages[project].find(filename)
        if entry is None or entry.sha256 != digest or f"sha256={digest}" not in html[project]:
            missing.append(key)
    root = RootListing.from_json_bytes(read("simple/index.json"))
    missing += [f"root listing: {p}" for p in projects if p not in root.projects]
    return missing


def listed_at(invocations: list[dict[str, Any]]) -> dict[str, float]:
    """When each key was listed: the return of the first invocation that handled its message
    without reporting it failed."""
    done: dict[str, float] = {}
    for call in sorted(invocations, key=lambda c: c["returned"]):
        for key in call["keys"]:
            if key not in call["failed_keys"]:
                done.setdefault(key, call["returned"])
    return done


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def figures(
    dropped: dict[str, float], invocations: list[dict[str, Any]], concurrency: int
) -> dict[str, Any]:
    """Latencies, throughput and where the time and the requests went."""
    listed = listed_at(invocations)
    latency = [listed[k] - t for k, t in dropped.items() if k in listed]
    first, last = min(dropped.values()), max(listed.values(), default=math.nan)
    asked: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for call in invocations:
        asked.update(call["requests"]["asked"])
        lost.update(call["requests"]["lost"])
    handler = [c["returned"] - c["invoked"] for c in invocations]
    waited = [c["invoked"] - c["first_received"] for c in invocations]
    queued = [
        c["first_received"] - dropped[k] for c in invocations for k in c["keys"] if k in dropped
    ]
    return {
        "drops": len(dropped),
        "listed": len(listed),
        "concurrency": concurrency,
        "p50_s": percentile(latency, 50),
        "p95_s": percentile(latency, 95),
        "p99_s": percentile(latency, 99),
        "max_s": max(latency, default=math.nan),
        "drop_s": max(dropped.values()) - first,
        "throughput": len(listed) / (last - first) if listed else math.nan,
        "invocations": len(invocations),
        "batch_mean": statistics.fmean(len(c["keys"]) for c in invocations) if invocations else 0,
        "handler_p50_s": percentile(handler, 50),
        "handler_p99_s": percentile(handler, 99),
        "queued_p50_s": percentile(queued, 50),
        "queued_p99_s": percentile(queued, 99),
        "window_p50_s": percentile(waited, 50),
        "retried": sum(len(c["failed_keys"]) for c in invocations),
        "requests_per_drop": sum(asked.values()) / max(1, len(dropped)),
        "latencies_s": sorted(round(t, 3) for t in latency),
        "asked": dict(asked.most_common()),
        "lost": dict(lost.most_common()),
    }


# -- the processes: moto, and one per execution environment ---------------------------------


def serve_moto() -> None:
    """``python -m bench.burst moto``: a moto server on loopback (``skypi dev``'s) until stdin
    closes; its endpoint on the first line of stdout."""
    from skypi.local.emulator import start_moto

    server, endpoint = start_moto()
    print(endpoint, flush=True)
    sys.stdin.read()
    server.stop()


def environment(config: dict[str, Any]) -> None:
    """``python -m bench.burst environment CONFIG``: one Lambda execution environment, polling
    until stdin closes; then its invocations, as JSON, into ``config["out"]``."""
    import boto3

    from skypi.indexer import handler as indexer_handler
    from skypi.indexer.events import decode_notification

    indexer = indexer_handler._default_indexer()  # as on Lambda: from the environment
    log = RequestLog(indexer.store.client)
    calls: list[dict[str, Any]] = []
    poller: WindowedPoller

    def invoke(event: dict[str, Any], context: Any) -> Mapping[str, Any]:
        invoked, before = time.time(), log.snapshot()
        response = indexer_handler.handler(event, context)
        returned, after = time.time(), log.snapshot()
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        keys = {  # a rebuild of the root listing names no file
            r["messageId"]: [c.key for c in decode_notification(r["body"]).changes]
            for r in event["Records"]
            if r["body"] != ROOT_REBUILD_MESSAGE
        }
        calls.append(
            {
                "first_received": poller.first_received,
                "invoked": invoked,
                "returned": returned,
                "keys": [k for ks in keys.values() for k in ks],
                "failed_keys": [k for m in failed for k in keys.get(m, [])],
                "requests": _difference(before, after),
            }
        )
        return response

    resources = Resources(**config["resources"])
    sqs = boto3.client("sqs", endpoint_url=config["endpoint"])
    handler: Handler = invoke
    poller = WindowedPoller(
        sqs, resources, handler, batch_size=config["batch_size"], window_s=config["window_s"]
    )
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    Path(config["ready"]).touch()
    while not stop.is_set():
        poller.poll_once()
    Path(config["out"]).write_text(json.dumps(calls))


def _difference(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    return {part: dict(Counter(after[part]) - Counter(before.get(part, {}))) for part in after}


def _child(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.burst", *args],
        cwd=ROOT,
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE if args[0] == "moto" else log.open("w"),
        stderr=log.with_suffix(".err").open("w"),
        text=True,
    )


def _end(process: subprocess.Popen[str]) -> None:
    """Close its stdin (it stops and writes what it measured); kill it if it hangs."""
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _drained(sqs: Any, queue_url: str, deadline: float) -> bool:
    """Wait until the queue holds no message, visible, in flight or delayed (the root
    listing's rebuild waits out its window as a delayed message), twice in a row."""
    quiet = 0
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",  # the root listing's rebuild, deferred
            ],
        )["Attributes"]
        quiet = quiet + 1 if not any(int(v) for v in attributes.values()) else 0
        if quiet >= 2:
            return True
        time.sleep(0.5)  # each look is a pass over the whole queue in moto
    return False


def burst(
    work: Path,
    settings: QueueSettings,
    *,
    concurrency: int,
    projects: int,
    per_project: int,
    timeout_s: float,
) -> dict[str, Any]:
    """One burst into a fresh bucket: ``projects`` times ``per_project`` drops, ``concurrency``
    environments. Raises AssertionError if a drop is not listed with its hash."""
    from skypi.store.s3 import S3Store

    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **CREDENTIALS}
    moto = _child(["moto"], env, work / "moto.log")
    environments: list[subprocess.Popen[str]] = []
    try:
        assert moto.stdout is not None
        endpoint = moto.stdout.readline().strip()
        s3, sqs, resources = _provisioned(endpoint, settings)
        bucket = resources.bucket
        env |= {
            "AWS_ENDPOINT_URL": endpoint,
            "SKYPI_BUCKET": bucket,
            # the root listing rebuilt by a delayed message on the queue, as the stack has it
            ROOT_QUEUE_VARIABLE: resources.queue_url,
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        for i in range(concurrency):
            environments.append(_environment(work, i, endpoint, resources, settings, env))
        _wait_ready(work, concurrency, environments)
        files = burst_files(projects, per_project)
        started, pids = time.monotonic(), [moto.pid] + [p.pid for p in environments]
        cpu = [cpu_seconds([pid]) for pid in pids]
        dropped = drop_all(lambda k, d: s3.put_object(Bucket=bucket, Key=k, Body=d), files)
        drained = _drained(sqs, resources.queue_url, started + timeout_s)
        wall = time.monotonic() - started
        cpu = [cpu_seconds([pid]) - before for pid, before in zip(pids, cpu, strict=True)]
    finally:
        for process in environments:
            _end(process)
    try:
        invocations = _invocations(work, concurrency)
        store = S3Store(bucket, s3)
        missing = unlisted(lambda key: store.get(key)[1], files)
    finally:
        _end(moto)
    result = figures(dropped, invocations, concurrency) | {
        "projects": projects,
        "drained": drained,
        "unlisted": missing[:20],
        "wall_s": wall,
        "moto_cpu_s": cpu[0],
        "environments_cpu_s": sum(cpu[1:]),
    }
    assert drained, f"the queue was not drained in {timeout_s:.0f} s"
    assert not missing, f"not every drop was listed with its hash: {missing[:20]}"
    return result


def _invocations(work: Path, concurrency: int) -> list[dict[str, Any]]:
    """Every invocation each environment recorded."""
    return [
        call
        for i in range(concurrency)
        if (work / f"calls-{i}.json").exists()
        for call in json.loads((work / f"calls-{i}.json").read_text())
    ]


def _provisioned(endpoint: str, settings: QueueSettings) -> tuple[Any, Any, Resources]:
    """The S3 and SQS clients, and a fresh bucket with its queue as the stack makes them."""
    import boto3

    from skypi.local.emulator import provision
    from skypi.store.s3 import s3_config

    bucket = f"skypi-burst-{uuid.uuid4().hex[:8]}"
    keys = {k.lower(): v for k, v in CREDENTIALS.items() if k.startswith("AWS_") and "KEY" in k}
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, config=s3_config(endpoint), region_name="us-east-1", **keys
    )
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1", **keys)
    resources = provision(s3, sqs, bucket, visibility_timeout=settings.visibility_timeout_s)
    sqs.purge_queue(QueueUrl=resources.queue_url)  # the s3:TestEvent of the setup
    return s3, sqs, resources


def _environment(
    work: Path,
    i: int,
    endpoint: str,
    resources: Resources,
    settings: QueueSettings,
    env: dict[str, str],
) -> subprocess.Popen[str]:
    """The ``i``-th modelled Lambda execution environment, polling the queue."""
    config = {
        "endpoint": endpoint,
        "resources": asdict(resources),
        "batch_size": settings.batch_size,
        "window_s": settings.batching_window_s,
        "ready": str(work / f"ready-{i}"),
        "out": str(work / f"calls-{i}.json"),
    }
    return _child(["environment", json.dumps(config)], env, work / f"environment-{i}.log")


def _wait_ready(work: Path, count: int, processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 120
    while not all((work / f"ready-{i}").exists() for i in range(count)):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise RuntimeError(f"an execution environment did not start: see {work}")
        time.sleep(0.1)


def run(
    work: Path,
    *,
    projects: int = 100,
    per_project: int = 10,
    concurrencies: tuple[int, ...] = (),
    timeout_s: float = 240,
) -> dict[str, Any]:
    """The stack's settings, and a burst at the modelled concurrency (and at each of
    ``concurrencies``, to show how it scales)."""
    from bench.synth import synthesize, template

    print("== the AWS path: a burst of drop-ins (moto)", flush=True)
    out = work / "cdk.out"
    synthesize(out)
    settings = indexer_queue_settings(template(out))
    levels = sorted({settings.concurrency, *concurrencies})
    rows = []
    for level in levels:
        row = burst(
            work / f"burst-{level}",
            settings,
            concurrency=level,
            projects=projects,
            per_project=per_project,
            timeout_s=timeout_s,
        )
        rows.append(row)
        print(
            f"  burst of {row['drops']:,} drops into {projects} projects, {level} environments:"
            f" p50 {row['p50_s']:.2f} s, p95 {row['p95_s']:.2f} s, p99 {row['p99_s']:.2f} s,"
            f" {row['throughput']:.1f} drops/s, {row['requests_per_drop']:.1f} requests/drop",
            flush=True,
        )
    return {
        "settings": asdict(settings),
        "modelled": settings.concurrency,
        "why": settings.concurrency_reason,
        "rows": rows,
    }


if __name__ == "__main__":
    if sys.argv[1] == "moto":
        serve_moto()
    elif sys.argv[1] == "environment":
        environment(json.loads(sys.argv[2]))
