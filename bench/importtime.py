"""Cold start of the Lambda handlers, each figure the median of N fresh processes:

- ``import``: ``python -c "import <handler>"`` with no bytecode at all
  (``PYTHONDONTWRITEBYTECODE=1`` and an empty ``PYTHONPYCACHEPREFIX``), as a bundle without
  ``.pyc`` files starts on Lambda's read-only ``/var/task``;
- ``first use``: the same, then what the first event builds (the indexer or the app, with
  their botocore clients; no network), so work moved out of the import is still counted;
- ``bundle, bytecode``: ``first use`` from a bundle built for this machine's Python, whose
  ``.pyc`` files were compiled at bundling (what a bundle built with the functions' own Python
  version ships).

Each is reported as wall time and as the process's CPU time (user + system), which a busy
shared machine disturbs far less. The ``-X importtime`` breakdown names the top contributors,
so a regression is visible.

    .venv/bin/python bench/importtime.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ("skypi.indexer.handler", "skypi.api.handler", "skypi.api.viewhandler")
MODULES = (
    *HANDLERS,
    # The description renderer, imported by the indexer only when a new release is described:
    # what the first upload of a release pays on top of a cold start (docs/local-index.md).
    "readme_renderer.rst",
    "readme_renderer.markdown",
)
FIRST_USE = {
    "skypi.indexer.handler": "m._default_indexer().store.client",
    "skypi.api.handler": "m._app(); from skypi.store.s3 import s3_client; s3_client()",
    "skypi.api.viewhandler": (
        "from skypi.local.emulator import LambdaContext; "
        "m._build(LambdaContext())[1].store.client; m._build(LambdaContext())[1].timer.client"
    ),
}
_ENV = {
    "SKYPI_BUCKET": "skypi-bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "SKYPI_TOKEN_TABLE": "skypi-bench-tokens",
    "POWERTOOLS_METRICS_NAMESPACE": "skypi",
    "SKYPI_VIEW_SCHEDULE_GROUP": "skypi-bench-views",
    "SKYPI_VIEW_SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/skypi-bench-scheduler",
}
# What each local server loads before its port answers: skypi serve's module, its app (built),
# uvicorn and the folder watcher; pypiserver's command and its app (built).
LOCAL_FIRST_USE = {
    "skypi.local.serve": (
        "import tempfile; from pathlib import Path; import uvicorn; "
        "from skypi.api.app import create_app; from skypi.api.settings import Settings; "
        "from skypi.local.watch import FolderWatcher; from skypi.store.local import LocalStore; "
        "create_app(LocalStore(Path(tempfile.mkdtemp())), Settings())"
    ),
    "pypiserver.__main__": (
        "import pypiserver, tempfile; pypiserver.app(roots=[tempfile.mkdtemp()])"
    ),
}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| +(\S+)")


def _script(module: str, first_use: bool) -> str:
    body = f"import importlib; m = importlib.import_module({module!r})"
    if first_use:
        body += f"; {FIRST_USE.get(module) or LOCAL_FIRST_USE[module]}"
    return body


def wall(module: str, *, first_use: bool, bundle: Path | None = None) -> float:
    """Seconds for one fresh interpreter to run the import (and first use)."""
    return timed(module, first_use=first_use, bundle=bundle)[0]


def timed(
    module: str,
    *,
    first_use: bool,
    bundle: Path | None = None,
    python: str = sys.executable,
    installed: bool = False,
) -> tuple[float, float]:
    """(wall, CPU) seconds of one fresh interpreter running the import (and first use);
    ``installed``: with the bytecode compiled at install, where the interpreter looks for it."""
    env = {**os.environ, **_ENV}
    command = [python]
    if installed:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        command += ["-c", _script(module, first_use)]
    elif bundle is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        cache = tempfile.mkdtemp(prefix="skypi-pycache-")
        env["PYTHONPYCACHEPREFIX"] = cache  # empty: nothing precompiled is found
        command += ["-c", _script(module, first_use)]
    else:  # the bundle alone on sys.path, its own .pyc files in place
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
        prelude = (
            f"import sys; sys.path = [{str(bundle)!r}] + "
            "[p for p in sys.path if 'site-packages' not in p]; "
        )
        command += ["-c", prelude + _script(module, first_use)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, cwd=ROOT / "functions")
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def measure(module: str) -> tuple[float, dict[str, float]]:
    """Seconds to import ``module`` (``-X importtime``, bytecode as present), and each
    top-level package's share (the sum of its modules' own times)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **_ENV},
    )
    total, parts = 0.0, {}
    for match in _LINE.finditer(result.stderr):
        own, name = int(match.group(1)) / 1e6, match.group(3)
        if name == module:
            total = int(match.group(2)) / 1e6
        package = name.lstrip("_").split(".")[0]
        package = "stdlib" if package in sys.stdlib_module_names else package
        parts[package] = parts.get(package, 0.0) + own
    return total, parts


def host_bundle(into: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "functions"))
    from infra.bundling import build_bundle

    build_bundle(into, "x86_64", f"{sys.version_info.major}.{sys.version_info.minor}")
    return into


def run(runs: int = 7) -> dict[str, Any]:
    """Median seconds per module and condition."""
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="skypi-bundle-") as tmp:
        bundle = host_bundle(Path(tmp) / "bundle") if sys.platform == "linux" else None
        for module in HANDLERS:
            conditions: dict[str, tuple[bool, Path | None]] = {
                "import": (False, None),
                "first_use": (True, None),
            }
            if bundle is not None:
                conditions["bundle_bytecode_first_use"] = (True, bundle)
            row = {}
            for name, (first_use, where) in conditions.items():
                samples = [timed(module, first_use=first_use, bundle=where) for _ in range(runs)]
                row[f"{name}_s"] = statistics.median(w for w, _ in samples)
                row[f"{name}_cpu_s"] = statistics.median(c for _, c in samples)
            results[module] = row
    return results


def local_servers(peer_python: str | None, runs: int = 7) -> dict[str, Any]:
    """``skypi serve`` and pypiserver (its own interpreter, ``peer_python``): import and first
    use (the app built) without bytecode, and first use with the bytecode compiled at install;
    medians of ``runs``, the two taken in turn so a drift of the machine hits both alike."""
    pythons = {"skypi.local.serve": sys.executable}
    if peer_python:
        pythons["pypiserver.__main__"] = peer_python
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {m: {} for m in pythons}
    conditions = {
        "import": {"first_use": False},
        "first_use": {"first_use": True},
        "installed_first_use": {"first_use": True, "installed": True},
    }
    for _ in range(runs):
        for name, flags in conditions.items():
            for module, python in pythons.items():
                got = timed(module, python=python, **flags)  # type: ignore[arg-type]
                samples[module].setdefault(name, []).append(got)
    return {
        module: {
            key: statistics.median(s[i] for s in rows)
            for name, rows in by_condition.items()
            for i, key in enumerate((f"{name}_s", f"{name}_cpu_s"))
        }
        for module, by_condition in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for module, row in run(args.runs).items():
        figures = ", ".join(f"{k.removesuffix('_s')} {v * 1000:.0f} ms" for k, v in row.items())
        print(f"{module}: {figures} (median of {args.runs})")
        _, parts = measure(module)
        for name, seconds in sorted(parts.items(), key=lambda kv: -kv[1])[:8]:
            print(f"    {name:<24} {seconds * 1000:6.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
