"""``make bench``: skypi beside pypiserver and static nginx, measured in the same run.

Interleaved rounds (every peer started fresh, in a rotated order), medians, server CPU per
request from /proc, loopback only, every load window bounded. Writes docs/benchmarks.md and
the plots in docs/bench/. Never part of ``make test``.

    .venv/bin/python bench/run.py [--sizes 200 2000] [--rounds 3] [--duration 5] [--idle 30]
        [--adopt-sizes 1000 4000 16000] [--project-files 100 3000] [--adopt-timeout 60]
    .venv/bin/python bench/run.py --only restart   # the restored-copy figures alone
    .venv/bin/python bench/run.py --only writes    # adoption and one big project alone
    .venv/bin/python bench/run.py --only aws       # the AWS path on moto alone: burst, scale
    .venv/bin/python bench/run.py --only views     # a view beside a devpi mirror alone
    .venv/bin/python bench/run.py --small          # every part at smaller sizes (minutes)

``make bench BENCH_ARGS="--small"`` passes the flags through.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench import burst, compression, corpus, goals, load, peers, s3cost, views, writes  # noqa: E402
from bench import importtime as coldstart  # noqa: E402
from bench.dists import wheel_bytes, wheel_name  # noqa: E402
from bench.importtime import MODULES  # noqa: E402
from bench.importtime import measure as import_time  # noqa: E402

JSON = "application/vnd.pypi.simple.v1+json"
UPLOADS = 30
DOCS = ROOT / "docs"


# -- measuring --------------------------------------------------------------------------


def page_load(peer: peers.Peer, projects: int, accept: str, args: Any, work: Path) -> dict:
    paths = [f"/simple/{corpus.project(i)}/" for i in range(1, projects + 1)]
    return load.paths_load(peer, paths, accept, args.duration, work)


def root_p50(peer: peers.Peer) -> float:
    times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(20):
            started = time.perf_counter()
            client.get(peer.index)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def pip_dry_run(peer: peers.Peer, work: Path) -> dict[str, Any]:
    return load.pip_resolve(peer.index, corpus.project(1), "pkg-00010-1.1.0")


def drop_in_delay(peer: peers.Peer, folder: Path, round_: int) -> float:
    name, version = "dropped-in", f"1.{round_}.{time.time_ns() % 100000}"
    target = folder / name / wheel_name(name, version)
    target.parent.mkdir(exist_ok=True)
    staging = folder.parent / f".{target.name}"
    staging.write_bytes(wheel_bytes(name, version))
    started = time.perf_counter()
    staging.replace(target)  # an atomic copy-in
    with httpx.Client(timeout=10) as client:
        while time.perf_counter() - started < 30:
            page = client.get(f"{peer.index}{name}/")
            if page.status_code == 200 and target.name in page.text:
                return time.perf_counter() - started
            time.sleep(0.01)
    return float("nan")


def local_update_cost(folder: Path) -> float:
    from skypi.indexer.service import Indexer, Landed
    from skypi.store.local import LocalStore

    store = LocalStore(folder)
    key = f"packages/{corpus.project(2)}/{wheel_name(corpus.project(2), '9.9.9')}"
    store.put(key, wheel_bytes(corpus.project(2), "9.9.9"))
    started = time.perf_counter()
    Indexer(store).apply([Landed(key)])
    return time.perf_counter() - started


def settle(peer: peers.Peer, quiet: float = 0.02, bound: float = 30) -> float:
    """The server's CPU-seconds once a whole second passes in which it spends under ``quiet``
    (at most ``bound`` seconds of waiting): the work a start does after its port answers."""
    last = peers.cpu_seconds(peer.tree())
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        time.sleep(1)
        now = peers.cpu_seconds(peer.tree())
        if now - last < quiet:
            return now
        last = now
    return last


def restart_figures(folder: Path, work: Path, rounds: int, idle: int) -> dict[str, Any]:
    """A restored copy (``cp -a``: new inodes and ctimes, the same sizes and mtimes, skypi's
    state folder included): seconds until ``/simple/`` answers, then server CPU-seconds over
    ``idle`` seconds with no request. Each round copies the folder afresh for each peer."""
    starters = {"skypi": peers.start_skypi, "pypiserver": peers.start_pypiserver}
    rows: dict[str, list[dict[str, float]]] = {label: [] for label in starters}
    for round_ in range(rounds):
        order = list(starters)[round_ % 2 :] + list(starters)[: round_ % 2]
        for label in order:
            copy = work / f"restored-{label}"
            shutil.rmtree(copy, ignore_errors=True)
            subprocess.run(["cp", "-a", str(folder), str(copy)], check=True)
            subprocess.run(["sync"], check=False)
            started = starters[label](copy, work)
            if started is None:
                continue
            peer, ready_s = started
            try:
                before = peers.cpu_seconds(peer.tree())  # all of it spent starting
                settled = settle(peer)  # what a start still does once its port answers
                time.sleep(idle)
                spent = peers.cpu_seconds(peer.tree()) - settled
            finally:
                peer.stop()
            rows[label].append(
                {
                    "restart_s": ready_s,
                    "restart_cpu_s": before,
                    "settled_cpu_s": settled,
                    "idle_cpu_s": spent,
                }
            )
            print(
                f"  restored copy, {label}: ready in {ready_s:.2f} s ({before:.2f} CPU-s, "
                f"{settled:.2f} once settled), {spent:.2f} CPU-s idle"
            )
            shutil.rmtree(copy, ignore_errors=True)
    return {
        "files": sum(1 for _ in folder.rglob("*.*") if ".skypi" not in _.parts),
        "idle_s": idle,
        "peers": rows,
    }


def only_restart(args: argparse.Namespace) -> dict[str, Any]:
    """``--only restart``: measure the restored-copy figures alone, into the last results."""
    work = Path(args.work or tempfile.mkdtemp(prefix="skypi-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    previous = Path(args.json)
    results: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    size = max(args.sizes)
    folder = work / f"corpus-{size}"
    if not folder.exists():
        corpus.build(folder, size)
    first, _ = peers.start_skypi(folder, work)  # adopts the folder: pages and fingerprints
    first.stop()
    results["restart"] = restarts(args, work)
    results["restart"]["machine"] = machine()
    return results


def restarts(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The restored copy of the largest corpus, with its idle time; the smaller ones without
    (their restarts give the growth exponent)."""
    figures = restart_figures(work / f"corpus-{max(args.sizes)}", work, args.rounds, args.idle)
    figures["smaller"] = [
        restart_figures(work / f"corpus-{size}", work, args.rounds, 0)
        for size in sorted(args.sizes)[:-1]
        if (work / f"corpus-{size}").exists()
    ]
    return figures


# -- orchestration ----------------------------------------------------------------------


STARTERS = {
    "skypi": peers.start_skypi,
    "pypiserver": peers.start_pypiserver,
    "nginx-static": peers.start_nginx,
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work or tempfile.mkdtemp(prefix="skypi-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"sizes": {}, "machine": machine()}
    # Each peer uploads projects of its own, new ones in each round: they serve the same folder.
    upload_files = {
        (label, round_): corpus.build(
            work / "uploads" / f"{label}-{round_}",
            UPLOADS,
            prefix=f"up{label[:4]}{round_}",
            versions=1,
        )[:UPLOADS]
        for label in ("skypi", "pypiserver")
        for round_ in range(args.rounds)
    }
    partial = work / "results.partial.json"  # each part's figures kept as soon as measured
    for size in args.sizes:
        results["sizes"][str(size)] = _size_figures(size, args, work, upload_files)
        partial.write_text(json.dumps(results, indent=1))
    parts: list[tuple[str, Callable[[], Any]]] = [
        ("writes", lambda: write_parts(args, work)),
        ("restart", lambda: restarts(args, work)),
        ("", lambda: quick_parts(args.s3_sizes, work)),
        ("aws", lambda: aws_burst(args, work)),
        ("views", lambda: views.run(work, args.view_projects, args.rounds, args.duration)),
    ]
    for key, measure in parts:
        figures = measure()
        results.update({key: figures} if key else figures)
        partial.write_text(json.dumps(results, indent=1))
    return results


def _size_figures(
    size: int, args: argparse.Namespace, work: Path, upload_files: dict[tuple[str, int], list[Path]]
) -> dict[str, Any]:
    """Every peer over one corpus of ``size`` projects, in rounds of a rotated order; then
    skypi's reindex and one more file indexed."""
    print(f"== {size} projects", flush=True)
    folder = work / f"corpus-{size}"
    if not folder.exists():
        started = time.perf_counter()
        corpus.build(folder, size)
        print(f"corpus: {size * 6} files in {time.perf_counter() - started:.1f} s")
    first, adopt_s = peers.start_skypi(folder, work)  # adopts the folder: the pages exist
    first.stop()
    labels = list(STARTERS)
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for round_ in range(args.rounds):
        order = labels[round_ % len(labels) :] + labels[: round_ % len(labels)]
        for label in order:
            started = STARTERS[label](folder, work)
            if started is None:
                continue
            peer, ready_s = started
            try:
                uploads = upload_files.get((label, round_))
                row = _peer_row(peer, ready_s, size, round_, folder, args, work, uploads)
                rows[label].append(row)
                print(
                    f"  round {round_ + 1} {label}: html {row['html']['rps']:.0f} req/s, "
                    f"{row['html']['cpu_ms']:.3f} ms CPU/req",
                    flush=True,
                )
            finally:
                peer.stop()
    reindex, reindex_cpu = time_command([str(peers.BIN / "skypi"), "reindex", str(folder)], folder)
    return {
        "adopt_s": adopt_s,
        "peers": rows,
        "reindex_s": reindex,
        "reindex_cpu_s": reindex_cpu,
        "local_update_s": local_update_cost(folder),
    }


def _peer_row(
    peer: peers.Peer,
    ready_s: float,
    size: int,
    round_: int,
    folder: Path,
    args: argparse.Namespace,
    work: Path,
    uploads: list[Path] | None,
) -> dict[str, Any]:
    """One round of one peer: pages under load, the root, pip, a drop-in and (``uploads``,
    new projects of this round's) the upload rate."""
    row: dict[str, Any] = {"startup_s": ready_s, "rss_idle": load.rss_mib(peer.tree())}
    row["html"] = page_load(peer, size, "text/html", args, work)
    if peer.pep691:
        row["json"] = page_load(peer, size, JSON, args, work)
    row["root_p50_ms"] = root_p50(peer)
    row["pip"] = pip_dry_run(peer, work)
    if peer.label != "nginx-static":
        row["drop_in_s"] = drop_in_delay(peer, folder, round_)
    if uploads is not None and peer.uploads:
        batch = [work / "up" / peer.label / f"{size}-{round_}" / p.name for p in uploads]
        for source, target in zip(uploads, batch, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
        row["upload_fps"] = writes.upload_rate(peer, batch)
    return row


def aws_burst(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """A burst of drop-ins on the emulated AWS path, at the stack's settings."""
    return burst.run(
        work / "aws",
        projects=args.burst_projects,
        per_project=args.burst_per_project,
        concurrencies=tuple(args.burst_concurrency),
    )


def write_parts(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Adoption of flat folders and one project of many files, beside pypiserver."""
    figures = writes.run(
        work, args.adopt_sizes, args.project_files, args.adopt_timeout, args.write_rounds
    )
    figures["machine"] = machine()
    return figures


def quick_parts(s3_sizes: list[int], work: Path | None = None) -> dict[str, Any]:
    """The parts that need no corpus (``--only-quick``): S3 requests per upload, cold start
    (and the local servers' imports, beside pypiserver's when ``work`` holds or may install
    it) and compression."""
    peer = peers.pypiserver_bin(work) if work is not None else None
    return {
        "local_start": coldstart.local_servers(str(peer.parent / "python") if peer else None),
        "update_cost": s3cost.run(s3_sizes),
        "importtime": {
            module: statistics.median(import_time(module)[0] for _ in range(5))
            for module in MODULES
        },
        "coldstart": coldstart.run(runs=7),
        "compression": compression.run(),
    }


def time_command(command: list[str], folder: Path) -> tuple[float, float]:
    """A full rebuild: every page is rewritten from the files. Its seconds, and the
    CPU-seconds the command spent (steadier on a shared machine)."""
    shutil.rmtree(folder / ".skypi" / "simple", ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, timeout=1800)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def machine() -> dict[str, str]:
    def version(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30)
            return (out.stdout + out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "not installed"

    commit = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    # The code measured: the last commit that changed it, and whether the checkout differs.
    code = version(["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", "functions"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "functions"], check=False
    ).returncode
    return {
        "cpu": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "python": platform.python_version(),
        "skypi": code + (" with uncommitted changes" if dirty else ""),
        "checkout": commit,
        "pypiserver": peers.PYPISERVER,
        "devpi": peers.DEVPI,
        "nginx": version([peers.nginx_bin() or "nginx", "-v"]),
        "wrk": " ".join(version([peers.wrk_bin() or "wrk", "-v"]).split()[:2])
        if peers.wrk_bin()
        else "not installed",
        "pip": version([sys.executable, "-m", "pip", "--version"]).split(" from")[0],
        "bytecode": "compiled at install",  # peers.compile_bytecode, before anything starts
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per load window")
    parser.add_argument("--work", help="where corpora and logs go (default: a temp dir)")
    parser.add_argument("--json", default=str(DOCS / "bench" / "results.json"))
    parser.add_argument("--docs", default=str(DOCS), help="where benchmarks.md and plots go")
    parser.add_argument("--idle", type=int, default=30, help="idle seconds after a restart")
    for flag, default, text in (
        ("--adopt-sizes", writes.ADOPT_SIZES, "projects of the flat folders adopted"),
        ("--project-files", writes.PROJECT_SIZES, "files of the one project uploaded into"),
        ("--s3-sizes", (1000, 10000, 100000), "projects stored when indexing one file on S3"),
        ("--burst-concurrency", (), "environments of other bursts, beside the modelled one"),
    ):
        parser.add_argument(flag, type=int, nargs="+", default=list(default), help=text)
    parser.add_argument(
        "--write-rounds", type=int, default=3, help="rounds of adoption and one project"
    )
    parser.add_argument(
        "--view-projects", type=int, default=200, help="projects of the views' upstream"
    )
    parser.add_argument("--burst-projects", type=int, default=100, help="projects of the burst")
    parser.add_argument("--burst-per-project", type=int, default=10, help="drops per project")
    parser.add_argument(
        "--adopt-timeout",
        type=float,
        default=120,
        help="seconds a first start may take before it is stopped (larger sizes then skipped)",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="smaller sizes everywhere, one round (a few minutes): to check the harness, "
        "not reference figures",
    )
    parser.add_argument("--baseline", default=str(DOCS / "bench" / "baseline.json"))
    parser.add_argument(
        "--only-quick",
        action="store_true",
        help="re-measure only the S3 requests per upload, cold start and compression, "
        "keeping the rest of --json",
    )
    parser.add_argument(
        "--only",
        choices=["restart", "writes", "aws", "views"],
        help="measure only the restored-copy restart and idle CPU, only the write path "
        "(adoption, one project of many files), only the AWS path on moto (a burst of "
        "drop-ins, one upload against store size), or only a view beside a devpi mirror of "
        "the same local upstream, into the last results",
    )
    return parser


def _smaller(args: argparse.Namespace) -> None:
    """``--small``: every part at smaller sizes, one round."""
    args.sizes, args.rounds, args.duration, args.idle = [200], 1, 2, 5
    args.adopt_sizes, args.project_files, args.s3_sizes = (
        [250, 500, 1000],
        [100, 600],
        [100, 1000],
    )
    args.burst_projects, args.view_projects, args.write_rounds = 20, 40, 2


def _measured(args: argparse.Namespace) -> dict[str, Any]:
    """What the flags ask to measure, merged into the last results where only a part is."""
    if args.only_quick:
        work = Path(args.work or tempfile.mkdtemp(prefix="skypi-bench-"))
        return json.loads(Path(args.json).read_text()) | quick_parts(args.s3_sizes, work)
    if args.only == "restart":
        return only_restart(args)
    if args.only == "writes":
        work = Path(args.work or tempfile.mkdtemp(prefix="skypi-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        return json.loads(Path(args.json).read_text()) | {"writes": write_parts(args, work)}
    if args.only == "aws":
        work = Path(args.work or tempfile.mkdtemp(prefix="skypi-bench-"))
        return json.loads(Path(args.json).read_text()) | {
            "update_cost": s3cost.run(args.s3_sizes),
            "aws": aws_burst(args, work),
        }
    if args.only == "views":
        work = Path(args.work or tempfile.mkdtemp(prefix="skypi-bench-"))
        work.mkdir(parents=True, exist_ok=True)
        return json.loads(Path(args.json).read_text()) | {
            "views": views.run(work, args.view_projects, args.rounds, args.duration)
        }
    return run(args)


def main() -> int:
    args = _parser().parse_args()
    if args.small:
        _smaller(args)
    peers.compile_bytecode()  # both peers start from bytecode, as installed
    previous = Path(args.json)
    before = goals.previous_figures(json.loads(previous.read_text())) if previous.exists() else {}
    results = _measured(args)
    results["previous"] = before or results.get("previous", {})
    results["small"] = args.small or results.get("small", False)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    from bench.report import write_report

    baseline = Path(args.baseline)
    docs = Path(args.docs)
    write_report(results, docs, json.loads(baseline.read_text()) if baseline.exists() else None)
    print(f"wrote {docs / 'benchmarks.md'} and plots in {docs / 'bench'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
