"""Import time of the Lambda handlers (``python -X importtime``), median of N fresh processes,
with the top contributors, so a regression in cold start is visible.

    .venv/bin/python bench/importtime.py [--runs 7]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys

MODULES = (
    "skypi.indexer.handler",
    "skypi.api.handler",
    # The description renderer, imported by the indexer only when a new release is described:
    # what the first upload of a release pays on top of a cold start (docs/local-index.md).
    "readme_renderer.rst",
    "readme_renderer.markdown",
)
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| +(\S+)")


def measure(module: str) -> tuple[float, dict[str, float]]:
    """Seconds to import ``module`` in a new interpreter, and each top-level package's share
    (the sum of its modules' own times, so the shares add up to the total)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    totals = {}
    for module in MODULES:
        runs = [measure(module) for _ in range(args.runs)]
        median = statistics.median(total for total, _ in runs)
        totals[module] = median
        print(f"{module}: {median * 1000:.0f} ms (median of {args.runs})")
        last = runs[len(runs) // 2][1]
        for name, seconds in sorted(last.items(), key=lambda kv: -kv[1])[:8]:
            print(f"    {name:<24} {seconds * 1000:6.0f} ms")
    ratio = totals[MODULES[0]] / totals[MODULES[1]]
    print(f"indexer / api: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
