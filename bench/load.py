"""Load and resolve, the same for every peer: pages under wrk (or threads) with the server's CPU
per request from /proc, and pip resolving through an index with its requests counted from
pip's own debug log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench import peers

REQUEST = re.compile(r'"(?:GET|HEAD) (\S+) HTTP')


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def wrk(url: str, paths: list[str], accept: str, duration: int, work: Path) -> dict[str, float]:
    script = work / "paths.lua"
    script.write_text(
        "paths = {" + ",".join(json.dumps(p) for p in paths) + "}\n"
        f'wrk.headers["Accept"] = "{accept}"\n'
        "request = function() return wrk.format(nil, paths[math.random(#paths)]) end\n"
    )
    binary = peers.wrk_bin()
    assert binary
    out = subprocess.run(
        [binary, "-t1", "-c8", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=duration + 60,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]

    def latency(pct: str) -> float:
        match = re.search(rf"{pct}%\s+([\d.]+)(us|ms|s)", out)
        if not match:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        return float(match.group(1)) * scale

    return {"rps": rate, "requests": requests, "p50": latency("50"), "p99": latency("99")}


def python_load(url: str, paths: list[str], accept: str, duration: int) -> dict[str, float]:
    """Fallback when wrk is missing: 8 keep-alive connections in threads (client-bound)."""
    import random

    latencies: list[float] = []
    stop = time.monotonic() + duration

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, headers={"Accept": accept}, timeout=30) as client:
            while time.monotonic() < stop:
                started = time.perf_counter()
                client.get(rng.choice(paths))
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {
        "rps": len(latencies) / duration,
        "requests": len(latencies),
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99)],
    }


def paths_load(
    peer: peers.Peer, paths: list[str], accept: str, duration: int, work: Path
) -> dict[str, Any]:
    """``paths`` asked for at random for ``duration`` seconds: rate, latency and the server's
    CPU milliseconds per request (its whole process tree)."""
    url = f"http://127.0.0.1:{peer.port}"
    pids = peer.tree()
    before = peers.cpu_seconds(pids)
    use_wrk = bool(peers.wrk_bin())
    result: dict[str, Any] = (
        wrk(url, paths, accept, duration, work)
        if use_wrk
        else python_load(url, paths, accept, duration)
    )
    result["engine"] = "wrk" if use_wrk else "python"
    spent = peers.cpu_seconds(pids) - before
    result["cpu_ms"] = 1000 * spent / max(1, result["requests"])
    result["rss"] = rss_mib(pids)
    return result


def count_requests(pip_output: str) -> Counter[str]:
    """Requests by kind, from pip's own debug log (the same for every peer; no server logs):
    pages (any index's ``simple/`` path), ``.metadata`` files, and distributions."""
    kinds: Counter[str] = Counter()
    for path in REQUEST.findall(pip_output):
        if path.endswith(".metadata"):
            kinds[".metadata"] += 1
        elif "simple/" in path:
            kinds["pages"] += 1
        else:
            kinds["files"] += 1
    return kinds


def pip_resolve(index: str, requirement: str, expect: str) -> dict[str, Any]:
    """``pip install --dry-run requirement`` through ``index``, no cache: its seconds, whether
    it resolved (``expect``, a ``name-version`` pip names, is in its output) and its requests."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    command = [sys.executable, "-m", "pip", "install", "-vvv", "--dry-run", "--ignore-installed"]
    command += ["--isolated", "--disable-pip-version-check", "--no-cache-dir"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "--index-url", index, requirement],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    ok = result.returncode == 0 and expect in result.stdout.replace("_", "-")
    requests = count_requests(result.stdout + result.stderr)
    return {"seconds": elapsed, "ok": ok, "requests": dict(requests)}
