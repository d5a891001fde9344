"""A view over a local upstream beside a devpi mirror of the same upstream (loopback only).

The upstream is a second ``skypi serve`` on a generated corpus of public projects (upload
times are the files' mtimes, 30 days ago): ``pub-00001`` -> ... -> ``pub-00020`` is a
dependency chain, the other projects stand alone. skypi serves a view of it, ``pub``, with a
7-day cooldown (the policy is applied to every file); devpi-server (from PyPI, in an
environment of its own) serves a mirror index of it, ``root/pub``. Each round starts both
fresh (an empty folder with the view, a new devpi server folder), in a rotated order, and
measures, for each:

- **first miss**: time to the first byte of a page never asked for (the server fetches the
  upstream's page, applies its policy or not, stores it and answers), over 20 projects;
- **pip through it**: ``pip install --dry-run pub-00001`` (the 20-package chain), the first
  time (every page a miss, every file fetched from upstream) and again (all cached), beside
  pip against the upstream directly;
- **page hits**: every page asked for once, then asked for at random under wrk, with the
  server's CPU per page, as for ``/simple/``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench import load, peers
from bench.dists import wheel_bytes, wheel_name

CHAIN = 20
MISSES = 20
VERSIONS = ("1.0.0", "1.1.0")
AGE_S = 30 * 86400
VIEW = "pub"
HTML = "text/html"


def project(i: int) -> str:
    return f"pub-{i:05d}"


def upstream_folder(folder: Path, projects: int) -> Path:
    """``projects`` public projects of two wheels each, 30 days old; the first 20 a chain."""
    shutil.rmtree(folder, ignore_errors=True)
    old = time.time() - AGE_S
    for i in range(1, projects + 1):
        name = project(i)
        requires = (project(i + 1),) if i < CHAIN else ()
        directory = folder / name
        directory.mkdir(parents=True)
        for version in VERSIONS:
            path = directory / wheel_name(name, version)
            path.write_bytes(wheel_bytes(name, version, requires=requires))
            os.utime(path, (old, old))
    return folder


def start_view(work: Path, upstream: str, round_: int) -> tuple[peers.Peer, float] | None:
    """``skypi serve`` of an empty folder with one view of ``upstream``, 7 days' cooldown."""
    folder = work / f"view-{round_}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    add = [str(peers.BIN / "skypi"), "view", "add", VIEW, "--dir", str(folder)]
    subprocess.run(
        [*add, "--upstream", upstream, "--cooldown-days", "7"], check=True, capture_output=True
    )
    peer, ready_s = peers.start_skypi(folder, work)
    peer.label, peer.path = "skypi view", f"/view/{VIEW}/simple/"
    return peer, ready_s


def first_byte(client: httpx.Client, url: str) -> float:
    """Seconds until the response's first body byte (its headers read, one chunk of it)."""
    started = time.perf_counter()
    with client.stream("GET", url, headers={"Accept": HTML}) as response:
        chunks = response.iter_raw(1)
        next(chunks, b"")
        elapsed = time.perf_counter() - started
        for _ in chunks:  # the rest of the page, read to the end
            pass
    if response.status_code != 200:
        raise RuntimeError(f"{url}: {response.status_code}")
    return elapsed


def misses(peer: peers.Peer, projects: range) -> dict[str, Any]:
    """Time to first byte of pages never asked for, one after the other."""
    with httpx.Client(timeout=60) as client:
        seconds = [first_byte(client, f"{peer.index}{project(i)}/") for i in projects]
    return {
        "ttfb_p50_ms": 1000 * statistics.median(seconds),
        "ttfb_max_ms": 1000 * max(seconds),
        "count": len(seconds),
    }


def hits(peer: peers.Peer, projects: int, duration: int, work: Path) -> dict[str, Any]:
    """Every page asked for once (misses, not counted), then asked for under load."""
    paths = [f"{peer.path}{project(i)}/" for i in range(1, projects + 1)]
    with httpx.Client(base_url=f"http://127.0.0.1:{peer.port}", timeout=60) as client:
        for path in paths:
            client.get(path, headers={"Accept": HTML}).raise_for_status()
    return load.paths_load(peer, paths, HTML, duration, work)


def resolve(index: str) -> dict[str, Any]:
    return load.pip_resolve(index, project(1), f"{project(CHAIN)}-1.1.0")


def measure(
    peer: peers.Peer, ready_s: float, projects: int, duration: int, work: Path
) -> dict[str, Any]:
    """One round of one server over the upstream: misses, pip twice, hits."""
    cold = range(CHAIN + 1, min(projects, CHAIN + MISSES) + 1)
    row: dict[str, Any] = {"startup_s": ready_s, "miss": misses(peer, cold)}
    row["pip_first"] = resolve(peer.index)
    row["pip_again"] = resolve(peer.index)
    row["html"] = hits(peer, projects, duration, work)
    return row


def _said(label: str, row: dict[str, Any]) -> str:
    first, again = row["pip_first"], row["pip_again"]
    return (
        f"  {label}: first miss {row['miss']['ttfb_p50_ms']:.0f} ms to first byte, pip "
        f"{first['seconds']:.2f} s first ({'ok' if first['ok'] else 'FAILED'}), "
        f"{again['seconds']:.2f} s again, hits {row['html']['rps']:.0f} req/s, "
        f"{row['html']['cpu_ms']:.3f} ms CPU/page"
    )


def run(work: Path, projects: int, rounds: int, duration: int) -> dict[str, Any]:
    print(f"== views: a view and a devpi mirror of a local upstream ({projects} projects)")
    folder = upstream_folder(work / "upstream", projects)
    upstream, _ = peers.start_skypi(folder, work)
    starters: dict[str, Callable[[int], tuple[peers.Peer, float] | None]] = {
        "skypi view": lambda r: start_view(work, upstream.index, r),
        "devpi": lambda r: peers.start_devpi(work, upstream.index),
    }
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label in starters}
    direct: list[dict[str, Any]] = []
    try:
        for round_ in range(rounds):
            order = list(starters)[round_ % 2 :] + list(starters)[: round_ % 2]
            for label in order:
                started = starters[label](round_)
                if started is None:
                    continue
                peer, ready_s = started
                try:
                    rows[label].append(measure(peer, ready_s, projects, duration, work))
                finally:
                    peer.stop()
                print(_said(label, rows[label][-1]), flush=True)
            direct.append({"pip": resolve(upstream.index)})
            direct[-1]["html"] = load.paths_load(
                upstream, [f"/simple/{project(i)}/" for i in range(1, projects + 1)],
                HTML, duration, work,
            )  # fmt: skip
    finally:
        upstream.stop()
    return {
        "projects": projects,
        "chain": CHAIN,
        "misses": MISSES,
        "devpi": peers.DEVPI,
        "peers": rows,
        "upstream": direct,
    }
