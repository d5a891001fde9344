"""The write path at scale, skypi beside pypiserver in the same run (loopback only).

- **Adoption**: the first start on a flat folder of single-file projects that was never
  indexed (1,000 / 4,000 / 16,000 by default): seconds until ``/simple/`` answers, the
  CPU-seconds that took, files per second, and the growth exponent (the slope of a log-log
  fit of time over size, after subtracting the start on an empty folder; 1.0 is linear).
  A start that does not answer within ``timeout`` seconds is stopped, recorded as such, and
  the larger sizes are not tried.
- **One project of many files** (100 and 3,000 by default, all versions of one project):
  the first start on it, the median latency of single twine uploads into it, and the rate
  of one twine upload of many files. Both through twine's own upload command in this
  process: no interpreter start is counted (a constant per run, not per file).

Each figure is taken on a fresh copy of its folder, for each peer.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import peers
from bench.dists import wheel_bytes, wheel_name

ADOPT_SIZES = (1000, 4000, 16000)
PROJECT_SIZES = (100, 3000)
LATENCY_UPLOADS = 10
RATE_UPLOADS = 30
RUN = 5  # files per twine run when a rate is measured within a time budget
DEVPI_FILES = 100  # devpi is given a project by uploads (about 8 a second): the small one only
BUDGET_S = 20.0  # per peer and measurement: a slow peer uploads fewer files (still 3 or 5)
NIGHTLY = "nightly"
STATE = ".skypi"
CLOSE_TO_FLOOR_S = 0.1  # a start this close to the empty folder's has no growth to fit
Starter = Callable[[Path, Path, float], "tuple[peers.Peer, float] | None"]
STARTERS: dict[str, Starter] = {"pypiserver": peers.start_pypiserver, "skypi": peers.start_skypi}


def growth_exponent(sizes: list[int], seconds: list[float]) -> float:
    """The least-squares slope of ``log(seconds)`` over ``log(sizes)``: how time grows with
    size (1.0 linear, 2.0 quadratic). NaN without two distinct sizes of positive time."""
    points = [
        (math.log(n), math.log(t))
        for n, t in zip(sizes, seconds, strict=True)
        if n > 0 and t > 0 and not math.isnan(t)
    ]
    if len({x for x, _ in points}) < 2:
        return math.nan
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return covariance / sum((x - mean_x) ** 2 for x, _ in points)


# -- folders ----------------------------------------------------------------------------


def flat_folder(folder: Path, projects: int) -> Path:
    """``projects`` projects of one wheel each, all in ``folder`` itself (no subfolders)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(projects):
        name = f"flat-{i:05d}"
        (folder / wheel_name(name, "1.0")).write_bytes(wheel_bytes(name, "1.0"))
    return folder


def nightly_version(i: int) -> str:
    return f"1.0.dev{i}"


def nightly_wheel(folder: Path, i: int) -> Path:
    path = folder / wheel_name(NIGHTLY, nightly_version(i))
    path.write_bytes(wheel_bytes(NIGHTLY, nightly_version(i)))
    return path


def nightly_folder(folder: Path, files: int) -> Path:
    """One project of ``files`` nightly builds, one wheel each."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(files):
        nightly_wheel(folder, i)
    return folder


# -- measuring --------------------------------------------------------------------------


def start(label: str, folder: Path, work: Path, timeout: float) -> dict[str, Any]:
    """Start ``label`` on ``folder`` and stop it: its seconds to answer and CPU-seconds, or
    ``timed_out`` (the server stopped after ``timeout`` seconds)."""
    try:
        started = STARTERS[label](folder, work, timeout)
    except RuntimeError as exc:
        return _failed(exc, timeout)
    if started is None:
        return {"skipped": "not installed"}
    peer, ready_s = started
    try:
        return {"ready_s": ready_s, "cpu_s": peers.cpu_seconds(peer.tree())}
    finally:
        peer.stop()


def upload_url(peer: peers.Peer) -> str:
    where = {"skypi": "legacy/", "devpi": peers.DEVPI_INDEX.strip("/") + "/"}
    return f"http://127.0.0.1:{peer.port}/" + where.get(peer.label, "")


def _twine(peer: peers.Peer, files: list[Path]) -> float:
    """Seconds of one twine upload of ``files``, through twine's own upload command in this
    process: its checks, hashing and HTTP requests on one connection, no interpreter start
    (a constant per run, not per file, and most of a short run's time)."""
    from twine.commands.upload import upload
    from twine.settings import Settings

    settings = Settings(
        repository_url=upload_url(peer),
        username="bench",
        password=peer.password,
        non_interactive=True,
        disable_progress_bar=True,
    )
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        upload(settings, [str(path) for path in files])
    return time.perf_counter() - started


def upload_rate(peer: peers.Peer, files: list[Path], budget: float | None = None) -> float:
    """Files per second of twine uploads of ``files``: one run of them all, or with a
    ``budget`` (seconds) runs of :data:`RUN` files until one ends past it. NaN (and a line)
    if an upload fails."""
    runs = [files] if budget is None else [files[i : i + RUN] for i in range(0, len(files), RUN)]
    done, spent = 0, 0.0
    try:
        for batch in runs:
            spent += _twine(peer, batch)
            done += len(batch)
            if budget is not None and spent > budget:
                break
    except Exception as exc:  # twine raises its own errors, and requests' and rich's
        print(f"  twine upload to {peer.label} failed: {type(exc).__name__}: {exc}")
        return float("nan")
    return done / spent


def upload_latencies(
    peer: peers.Peer, files: list[Path], budget: float
) -> tuple[list[float], float]:
    """Seconds of each single-file upload, one after the other, until ``budget`` seconds
    are spent (three at least); and the server's CPU-seconds per upload."""
    seconds: list[float] = []
    cpu = peers.cpu_seconds(peer.tree())
    for path in files:
        seconds.append(_twine(peer, [path]))
        if len(seconds) >= 3 and sum(seconds) > budget:
            break
    return seconds, (peers.cpu_seconds(peer.tree()) - cpu) / len(seconds)


# -- the parts --------------------------------------------------------------------------


def empty_start(work: Path, timeout: float, runs: int = 3) -> dict[str, dict[str, float]]:
    """Each peer's start on an empty folder (median of ``runs``): the floor under every start."""
    floor = {}
    for label in STARTERS:
        rows = []
        for _ in range(runs):
            folder = work / "empty"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            rows.append(start(label, folder, work, timeout))
        ok = [r for r in rows if "ready_s" in r]
        if ok:
            floor[label] = {
                "ready_s": statistics.median(r["ready_s"] for r in ok),
                "cpu_s": statistics.median(r["cpu_s"] for r in ok),
            }
    return floor


def adoption(
    work: Path, sizes: list[int], timeout: float, labels: list[str] | None = None
) -> dict[str, Any]:
    floor = empty_start(work, timeout)
    rows: dict[str, dict[str, dict[str, Any]]] = {label: {} for label in STARTERS}
    stopped: set[str] = set()
    for size in sorted(sizes):
        folder = flat_folder(work / "adopt", size)
        for label in labels or STARTERS:
            if label in stopped:
                rows[label][str(size)] = {"skipped": "a smaller size timed out"}
                continue
            shutil.rmtree(folder / STATE, ignore_errors=True)  # never indexed
            row = start(label, folder, work, timeout)
            rows[label][str(size)] = row
            if "timed_out" in row or "failed" in row:
                stopped.add(label)
            print(f"  adoption, {size:,} projects, {label}: {_said(row)}", flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    return {"sizes": sorted(sizes), "timeout_s": timeout, "floor": floor, "peers": rows}


def exponents(adoption: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each peer's growth exponents from :func:`adoption`'s figures: over wall time and CPU
    time above the empty folder's, and where a start was stopped, a lower bound counting it
    at its timeout."""
    fits = {}
    for label, by_size in adoption["peers"].items():
        base = adoption["floor"].get(label, {"ready_s": 0.0, "cpu_s": 0.0})
        done = [(int(n), r) for n, r in by_size.items() if "ready_s" in r]
        ns = [n for n, _ in done]
        fits[label] = {
            "wall": growth_exponent(ns, _above(done, base, "ready_s")),
            "cpu": growth_exponent(ns, _above(done, base, "cpu_s")),
        }
        stopped = [(int(n), r["timed_out"]) for n, r in by_size.items() if "timed_out" in r]
        if stopped:
            n, t = stopped[0]
            fits[label]["wall_at_least"] = growth_exponent(
                [*ns, n], [*_above(done, base, "ready_s"), t - base["ready_s"]]
            )
    return fits


def _above(
    rows: list[tuple[int, dict[str, Any]]], floor: dict[str, float], key: str
) -> list[float]:
    """Each row's ``key`` above the empty folder's; NaN (no point) where it is too close."""
    net = [row[key] - floor[key] for _, row in rows]
    return [t if t >= CLOSE_TO_FLOOR_S else math.nan for t in net]


def one_project(
    work: Path, sizes: list[int], timeout: float, labels: list[str] | None = None
) -> dict[str, Any]:
    """skypi and pypiserver started on one project of each size; devpi (which adopts no
    folder) given the project by twine uploads first, up to :data:`DEVPI_FILES` files."""
    order = [*(labels or STARTERS), "devpi"]
    rows: dict[str, dict[str, dict[str, Any]]] = {label: {} for label in order}
    for size in sorted(sizes):
        for label in order:
            if label == "devpi" and size > DEVPI_FILES:
                continue
            row = _project_row(label, nightly_folder(work / "project", size), size, work, timeout)
            if row is not None:
                rows[label][str(size)] = row
                print(f"  one project, {size:,} files, {label}: {_said(row)}", flush=True)
    shutil.rmtree(work / "project", ignore_errors=True)
    return {
        "sizes": sorted(sizes),
        "latency_uploads": LATENCY_UPLOADS,
        "rate_uploads": RATE_UPLOADS,
        "budget_s": BUDGET_S,
        "devpi_files": DEVPI_FILES,
        "peers": rows,
    }


def _project_row(
    label: str, folder: Path, size: int, work: Path, timeout: float
) -> dict[str, Any] | None:
    """One peer on one project: its first start, single uploads into it, the upload rate."""
    extra = work / "project-uploads"
    shutil.rmtree(extra, ignore_errors=True)
    extra.mkdir(parents=True)
    single = [nightly_wheel(extra, size + i) for i in range(LATENCY_UPLOADS)]
    batch = [nightly_wheel(extra, size + LATENCY_UPLOADS + i) for i in range(RATE_UPLOADS)]
    try:
        started = (
            peers.start_devpi_stage(work, timeout)
            if label == "devpi"
            else STARTERS[label](folder, work, timeout)
        )
    except RuntimeError as exc:
        return _failed(exc, timeout)
    if started is None:
        return None
    peer, ready_s = started
    try:
        row: dict[str, Any] = {"cpu_s": peers.cpu_seconds(peer.tree())}
        if label == "devpi":  # the project given by uploads: no first start to compare
            row["prefill_s"] = _twine(peer, sorted(folder.iterdir()))
        else:
            row["ready_s"] = ready_s
        latencies, cpu_s = upload_latencies(peer, single, BUDGET_S)
        row["upload_ms"] = [1000 * s for s in latencies]
        row["upload_p50_ms"] = 1000 * statistics.median(latencies)
        row["upload_cpu_ms"] = 1000 * cpu_s
        row["upload_fps"] = upload_rate(peer, batch, BUDGET_S)
    except Exception as exc:  # a peer that fails an upload is reported, not fatal
        row["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        peer.stop()
    return row


def run(
    work: Path, adopt_sizes: list[int], project_sizes: list[int], timeout: float, rounds: int = 1
) -> dict[str, Any]:
    """Both parts, ``rounds`` times (the peers in a rotated order), merged: each figure the
    median over the rounds, each round's in ``by_round``."""
    parts = []
    for round_ in range(rounds):
        print(f"== the write path, round {round_ + 1} of {rounds}", flush=True)
        labels = list(STARTERS)[round_ % 2 :] + list(STARTERS)[: round_ % 2]
        parts.append(
            {
                "adoption": adoption(work, adopt_sizes, timeout, labels),
                "project": one_project(work, project_sizes, timeout, labels),
            }
        )
    return {
        "adoption": merged([part["adoption"] for part in parts]),
        "project": merged([part["project"] for part in parts]),
        "rounds": rounds,
    }


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One part's rounds as one: each row's numbers the median of the rounds that have them,
    each round's in the row's ``by_round``, its lists joined; the floor's medians."""
    whole = dict(parts[0])
    whole["peers"] = {
        label: {
            size: merged_row([p["peers"][label][size] for p in parts if size in p["peers"][label]])
            for size in by_size
        }
        for label, by_size in parts[0]["peers"].items()
    }
    if "floor" in whole:
        whole["floor"] = {
            label: merged_row([p["floor"][label] for p in parts if label in p["floor"]])
            for label in parts[0]["floor"]
        }
    return whole


def merged_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [row for row in rows if "ready_s" in row] or rows
    row: dict[str, Any] = dict(done[0])
    by_round: dict[str, list[float]] = {}
    for key, value in done[0].items():
        if isinstance(value, list):
            row[key] = [item for r in done for item in r.get(key, [])]
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in done if isinstance(r.get(key), int | float)]
            kept = [v for v in values if not math.isnan(v)] or values
            row[key] = statistics.median(kept)
            by_round[key] = values
    row["by_round"], row["rounds"] = by_round, len(done)
    return row


def _failed(exc: RuntimeError, timeout: float) -> dict[str, Any]:
    """A start that did not answer in time (stopped), or whose server exited."""
    if "not ready" in str(exc):
        return {"timed_out": timeout}
    return {"failed": str(exc)}


def _said(row: dict[str, Any]) -> str:
    if "timed_out" in row:
        return f"stopped, not ready after {row['timed_out']:.0f} s"
    if "skipped" in row or "failed" in row:
        return f"skipped ({row['skipped']})" if "skipped" in row else f"failed: {row['failed']}"
    said = (
        f"given by uploads in {row['prefill_s']:.2f} s"
        if "prefill_s" in row
        else f"ready in {row['ready_s']:.2f} s ({row['cpu_s']:.2f} CPU-s)"
    )
    if "upload_p50_ms" in row:
        said += (
            f", upload p50 {row['upload_p50_ms']:.0f} ms ({row['upload_cpu_ms']:.0f} ms server"
            f" CPU), {row['upload_fps']:.1f} files/s"
        )
    if "error" in row:
        said += f", failed: {row['error']}"
    return said
