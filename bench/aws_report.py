"""docs/benchmarks.md's sections on the AWS path (moto): a burst of drop-ins at the stack's
settings, and one upload against the number of projects stored."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.writes import growth_exponent

BURST_P99_S = 5.0  # the goal: drop -> listed, p99, at the modelled concurrency
NEW_BYTES_GROWTH = 2.0  # the goal: a new project's bytes at the largest store <= 2x at 1,000
DOCS = {
    "scaling": "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
    "parameters": "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html",
    "batching": "https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html",
    "scaling config": "https://docs.aws.amazon.com/lambda/latest/dg/API_ScalingConfig.html",
}


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def burst_section(results: dict[str, Any]) -> list[str]:
    aws = results.get("aws")
    if not aws:
        return []
    s = aws["settings"]
    window = s["batching_window_s"]
    lines = [
        "## The AWS path on moto: a burst of drop-ins",
        "",
        f"The stack's settings, read from the synthesized template: batch size {s['batch_size']},"
        f" maximum batching window {window} s, visibility timeout {s['visibility_timeout_s']} s,"
        f" function timeout {s['function_timeout_s']} s, event source maximum concurrency "
        f"{s['max_concurrency'] or 'not set'}, reserved concurrency "
        f"{s['reserved_concurrency'] or 'not set'}. Modelled concurrency: **{aws['modelled']}**"
        f" ({aws['why']}; Lambda then adds up to 300 concurrent batches a minute while messages"
        f" remain, up to 1,000: {DOCS['scaling']}).",
        "",
        "Each concurrent invocation is an execution environment of its own (a process running "
        "the real indexer handler, its indexer built from the environment as on Lambda, warm: "
        "cold starts are measured below), fed by Lambda's poller as documented: up to the "
        f"batch size, gathered for at most the batching window, which begins when the previous "
        f"invocation completes ({DOCS['batching']}; defaults: {DOCS['parameters']}). moto "
        "serves S3 and SQS from one process of its own (`skypi dev`'s); the drops are plain "
        "PUTs, 8 at a time, in key order (`aws s3 cp --recursive` of a folder of projects). A "
        "drop counts as listed when the invocation that handled it returned (its project's "
        "pages are written before the root listing and the landing page: an upper bound). "
        "Every drop is then read back, listed with its SHA-256 in its JSON and HTML pages "
        "(asserted by the bench; `tests/aws/test_burst.py` runs the same scenario small and "
        "counts its requests).",
        "",
        "| drops (projects) | environments | p50 s | p95 s | p99 s | throughput drops/s | "
        "invocations (mean batch) | handler p50 / p99 s | queued p50 / p99 s | "
        "requests per drop | moto / handlers CPU-s | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in aws["rows"]:
        lines.append(
            f"| {row['drops']:,} ({row['projects']}) | {row['concurrency']} | "
            f"{_fmt(row['p50_s'], 2)} | {_fmt(row['p95_s'], 2)} | **{_fmt(row['p99_s'], 2)}** | "
            f"{_fmt(row['throughput'])} | {row['invocations']} ({_fmt(row['batch_mean'])}) | "
            f"{_fmt(row['handler_p50_s'], 2)} / {_fmt(row['handler_p99_s'], 2)} | "
            f"{_fmt(row['queued_p50_s'], 2)} / {_fmt(row['queued_p99_s'], 2)} | "
            f"{_fmt(row['requests_per_drop'], 2)} | {_fmt(row['moto_cpu_s'])} / "
            f"{_fmt(row['environments_cpu_s'])} | {_fmt(row['wall_s'])} |"
        )
    row = next(r for r in aws["rows"] if r["concurrency"] == aws["modelled"])
    lines += ["", *_local_beside(results)]
    drops = row["drops"]
    asked = ", ".join(f"{k} {v / drops:.2f}" for k, v in row["asked"].items())
    lost = ", ".join(f"{k} {v}" for k, v in row["lost"].items()) or "none"
    lines += [
        "",
        f"Requests per drop at {aws['modelled']} environments, by operation and key family: "
        f"{asked}. Conditional writes refused (a compare-and-swap lost to another environment,"
        f" then read and tried again): {lost}.",
        "",
        *_where_the_time_goes(row, results.get("machine", {}).get("cpu", "")),
    ]
    return lines


def _where_the_time_goes(row: dict[str, Any], cpu: str) -> list[str]:
    """The burst's time, measured: CPU by process, the queue, and the requests behind it."""
    drops = row["drops"]
    moto_ms = 1000 * row["moto_cpu_s"] / drops
    handler_ms = 1000 * row["environments_cpu_s"] / drops
    per_batch = row["requests_per_drop"] * row["batch_mean"]
    batches = math.ceil(drops / max(row["batch_mean"], 1) / row["concurrency"])
    return [
        "Where the burst's time goes:",
        "",
        f"- **The queue.** Drops went in at {drops / max(row['drop_s'], 1e-9):.0f}/s and were "
        f"listed at {_fmt(row['throughput'])}/s: a drop waited {_fmt(row['queued_p50_s'])} s "
        f"(median) for an environment, then {_fmt(row['handler_p50_s'], 2)} s in its batch. "
        "Past the first batches, latency is the backlog: the p99 is about the burst's size "
        "over the throughput.",
        f"- **CPU, on this machine ({cpu}, shared).** moto spent {moto_ms:.0f} ms of CPU per "
        f"drop serving S3 and SQS, the indexer handlers {handler_ms:.0f} ms (hashing, reading "
        "metadata, rendering and compressing pages, botocore). Together they fit in "
        f"{_fmt((row['moto_cpu_s'] + row['environments_cpu_s']) / max(row['wall_s'], 1e-9), 2)}"
        " cores on average over the burst: the machine's other load took the rest. On AWS "
        "neither S3's nor SQS's work runs on the function's CPU.",
        f"- **Requests.** {_fmt(row['requests_per_drop'], 2)} S3 requests per drop, about "
        f"{per_batch:.0f} per batch; four are per file whatever the batch (a HEAD when the "
        "event is read, a GET of the file, the `.metadata` PUT, a HEAD once it is listed, to "
        "confirm it is still stored), the rest per project and per batch (the project's JSON "
        "page by compare-and-swap and the five objects that follow it, its page for people, "
        "the release's description; the root listing and its five followers when a project "
        "appears; the landing page). Sequential within a project, a batch's requests set its "
        f"time on AWS: at an assumed 20 ms per S3 request (not measured here), about "
        f"{per_batch * 0.02:.1f} s per batch, {batches} batches in a row per environment at "
        f"{row['concurrency']} environments: about {batches * per_batch * 0.02:.0f} s for the "
        "burst. The p99 goal needs fewer requests per batch or more environments (Lambda "
        "adds up to 300 a minute while the backlog lasts, which this model leaves out).",
        "- **Contention.** Lost compare-and-swaps are listed above: on a project's page when "
        "its files land in batches of different environments, on the root listing when "
        "batches start projects at once, on the landing page at every batch; each loss costs "
        "a read and another try.",
        "- **Fixed here.** moto's server looked for each request's service by listing its own "
        "package folder (about 150 `stat` calls) under a lock every request takes; it lists "
        "it once now (a 300-drop burst at 5 environments: moto's CPU 27 % lower, 8.9 to 12.2 "
        "drops/s). moto's SQS still scans the whole queue at each receive and each look at "
        "its attributes (the bench looks every 0.5 s).",
        "",
    ]


def _local_beside(results: dict[str, Any]) -> list[str]:
    """The local path's drop-in in the same run (skypi serve beside pypiserver)."""
    sizes = sorted(int(n) for n in results.get("sizes", {}))
    if not sizes:
        return []
    peers = results["sizes"][str(sizes[-1])]["peers"]

    def median(peer: str) -> float:
        values = sorted(r["drop_in_s"] for r in peers.get(peer, []) if "drop_in_s" in r)
        return values[len(values) // 2] if values else math.nan

    return [
        f"The local path in the same run ({sizes[-1]:,} projects, one file copied into the "
        f"folder): listed in {_fmt(median('skypi'), 2)} s by `skypi serve`, "
        f"{_fmt(median('pypiserver'), 2)} s by pypiserver (which lists the folder at each "
        "request; it has no AWS path).",
    ]


def scale_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    return list(results.get("update_cost", []))


def exponent(rows: list[dict[str, Any]], key: str) -> float:
    return growth_exponent([r["projects"] for r in rows], [float(r[key]) for r in rows])


def scale_section(results: dict[str, Any]) -> list[str]:
    rows = scale_rows(results)
    if not rows:
        return []
    lines = [
        "## One upload against store size (S3 on moto)",
        "",
        "Indexing one more wheel, into a known project and starting a new one: the S3 "
        "requests it asks for (and the SQS SendMessage that asks for a rebuild of the root "
        "listing) and the bytes of its PutObjects (botocore's event hooks; the upload's own "
        "PUT not counted). As on AWS, a new project's batch records it for the root "
        "listing's next rebuild; the rebuild, one per window, merges a burst of new projects "
        "(here 10) and is measured apart, with its bytes per new project; the last column is "
        "a new project whose batch writes the listing itself (a folder's way). The store is "
        "seeded directly, not by uploads: the first project indexed by skypi's Indexer, every "
        "other project's wheel and JSON page derived from it (checked against it), the root "
        "listing and landing page written for all of them at once by skypi's PageWriter "
        "(`bench/s3cost.py`).",
        "",
        "| projects stored | known project: requests | bytes written | ms | "
        "new project: requests | bytes written | ms | rebuild of a burst: requests | "
        "bytes written | per new project | written at once: bytes |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        burst = r.get("burst", 1)
        rebuild = r.get("rebuild_bytes", math.nan)
        lines.append(
            f"| {r['projects']:,} | {r['existing_requests']} | {_fmt(r['existing_bytes'], 0)} | "
            f"{_fmt(r['existing_s'] * 1000)} | {r['new_requests']} | {_fmt(r['new_bytes'], 0)} | "
            f"{_fmt(r['new_s'] * 1000)} | {r.get('rebuild_requests', '—')} | "
            f"{_fmt(rebuild, 0)} | {_fmt(rebuild / burst, 0)} | "
            f"{_fmt(r.get('at_once_bytes', math.nan), 0)} |"
        )
    if len(rows) > 1 and "new_bytes" in rows[0]:
        lines += [
            "",
            "Nothing on the hot path lists the bucket (the rebuild lists `pending/root/` "
            "only). Growth exponents (least-squares slope "
            "of log-log over the sizes; 0 is flat, 1 "
            f"linear): requests, known project {_fmt(exponent(rows, 'existing_requests'), 2)}, "
            f"new project {_fmt(exponent(rows, 'new_requests'), 2)}; bytes written, known "
            f"project {_fmt(exponent(rows, 'existing_bytes'), 2)}, new project "
            f"{_fmt(exponent(rows, 'new_bytes'), 2)}.",
        ]
        if "rebuild_bytes" in rows[0]:
            lines[-1] += (
                f" The rebuild's bytes grow with the listing (exponent "
                f"{_fmt(exponent(rows, 'rebuild_bytes'), 2)}): at most one per window, "
                "whatever the number of new projects in it."
            )
    return [*lines, ""]


def targets(results: dict[str, Any], row: Any) -> list[str]:
    """The AWS path's goals, as rows of the targets table (``row(target, measured, met)``)."""
    found = []
    aws = results.get("aws")
    if aws:
        modelled = next(r for r in aws["rows"] if r["concurrency"] == aws["modelled"])
        found.append(
            row(
                f"burst of {modelled['drops']:,} drop-ins into {modelled['projects']} projects "
                f"on moto: p99 <= {BURST_P99_S:.0f} s at the modelled concurrency "
                f"({aws['modelled']}), every drop listed",
                f"p99 {_fmt(modelled['p99_s'], 1)} s, {modelled['listed']:,} of "
                f"{modelled['drops']:,} listed with their hashes, "
                f"{_fmt(modelled['throughput'])} drops/s",
                modelled["p99_s"] <= BURST_P99_S and modelled["listed"] == modelled["drops"],
            )
        )
    rows = scale_rows(results)
    if len(rows) > 1 and "new_bytes" in rows[0]:
        first, last = rows[0], rows[-1]
        ratio = last["new_bytes"] / first["new_bytes"]
        found.append(
            row(
                f"a new project's bytes written at {last['projects']:,} projects <= "
                f"{NEW_BYTES_GROWTH:.0f}x those at {first['projects']:,}",
                f"{ratio:.1f}x ({first['new_bytes']:,} -> {last['new_bytes']:,} bytes; "
                f"exponent {_fmt(exponent(rows, 'new_bytes'), 2)})",
                ratio <= NEW_BYTES_GROWTH,
            )
        )
    return found


def plot(results: dict[str, Any], out: Path) -> list[str]:
    """The burst's drop -> listed latencies, and bytes written per upload against store size."""
    aws, rows = results.get("aws"), scale_rows(results)
    if not aws and not (rows and "new_bytes" in rows[0]):
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for r in (aws or {}).get("rows", []):
        latencies = r.get("latencies_s", [])
        if latencies:
            shares = [(i + 1) / len(latencies) for i in range(len(latencies))]
            left.plot(latencies, shares, label=f"{r['concurrency']} environments")
    left.axvline(BURST_P99_S, color="grey", ls=":", label="goal: p99 5 s")
    left.set(xlabel="drop -> listed, seconds", ylabel="share of drops listed", title="Burst")
    left.legend()
    if rows and "new_bytes" in rows[0]:
        sizes = [r["projects"] for r in rows]
        right.plot(sizes, [r["existing_bytes"] for r in rows], marker="o", label="known project")
        right.plot(sizes, [r["new_bytes"] for r in rows], marker="o", label="new project")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set(xlabel="projects stored", ylabel="bytes written", title="One upload on S3")
        right.legend()
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "aws-path.png", dpi=100)
    plt.close(fig)
    return ["aws-path.png"]
