"""Origin requests per 1,000 page reads in a CI burst, under CloudFront's documented
expiration rule: an edge answers from its copy while the copy is younger than its TTL (the
origin's ``s-maxage`` when present, within the cache policy's minimum and maximum TTL), and
otherwise sends one request to the origin, which requests arriving meanwhile share
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/Expiration.html;
"simultaneous requests for the same object" in
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/RequestAndResponseBehaviorS3Origin.html).

A model of the rule, not a measurement of CloudFront; deterministic, so the figures in
docs/deploy.md can be reproduced:

    .venv/bin/python bench/edge_cache.py
"""

from __future__ import annotations

import random

from skypi.core.http import PAGE_EDGE_SECONDS

ROUND_TRIP = 0.08  # edge to the bucket's region and back, seconds


def origin_requests(reads: list[tuple[float, str]], ttl: float) -> int:
    """How many of ``reads`` (time, page) reach the origin at one edge with this TTL."""
    fetched: dict[str, float] = {}  # page -> when its copy arrived (or will)
    sent = 0
    for moment, page in sorted(reads):
        arrived = fetched.get(page)
        if arrived is not None and moment < arrived + ttl:  # fresh, or a request in flight
            continue
        fetched[page] = moment + ROUND_TRIP
        sent += 1
    return sent


def ci_burst(jobs: int, window: float, depth: int = 10, seed: int = 1) -> list[tuple[float, str]]:
    """``jobs`` CI jobs starting within ``window`` seconds, each resolving the same ``depth``
    pages one after another (a ten-deep dependency chain), one edge."""
    rng = random.Random(seed)
    reads = []
    for _ in range(jobs):
        start = rng.uniform(0, window)
        reads += [(start + i * ROUND_TRIP, f"page-{i}") for i in range(depth)]
    return reads


def main() -> None:
    ttl = f"s-maxage={PAGE_EDGE_SECONDS}"
    print(f"{'burst':<44} {'reads':>6} {'max-age=0':>10} {ttl:>11}")
    for jobs, window in [(100, 10), (100, 60), (100, 300), (10, 60)]:
        reads = ci_burst(jobs, window)
        name = f"{jobs} jobs × 10 pages, starting within {window} s"
        before, after = origin_requests(reads, 0), origin_requests(reads, PAGE_EDGE_SECONDS)
        print(f"{name:<44} {len(reads):>6} {before:>10} {after:>11}")


if __name__ == "__main__":
    main()
