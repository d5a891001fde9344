"""S3 requests and wall time to index one new file, against the number of projects stored.

Against a moto server on loopback, through skypi's public parts only: the stored projects are
indexed by skypi itself in a local folder (the same keys and pages as in a bucket), copied into
moto's backend in memory (through HTTP a 2,000-project seed would take minutes and measure
nothing), then one more file is put through the S3 adapter and indexed there while botocore's
event hooks count the operations the indexer asks for (retries are not counted again).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.dists import wheel_bytes, wheel_name

MOTO_ACCOUNT = "123456789012"  # moto's default account
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


def seed_project(i: int) -> str:
    return f"seed-{i:05d}"


def seeded_store(endpoint: str, projects: int) -> Any:
    """A fresh versioned bucket holding ``projects`` indexed projects of one wheel each."""
    from moto.s3.models import s3_backends

    from skypi.indexer.service import Indexer, Landed
    from skypi.store.local import LocalStore
    from skypi.store.s3 import S3Store, s3_client

    client = s3_client(endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = f"skypi-bench-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    backend = s3_backends[MOTO_ACCOUNT]["aws"]
    with tempfile.TemporaryDirectory(prefix="skypi-bench-seed-") as tmp:
        local = LocalStore(Path(tmp) / "packages", Path(tmp) / "state")
        keys = []
        for i in range(projects):
            name = seed_project(i)
            key = f"packages/{name}/{wheel_name(name, '1.0')}"
            local.put(key, wheel_bytes(name, "1.0"))
            keys.append(key)
        Indexer(local).apply([Landed(key) for key in keys])
        for info in local.list(""):
            if info.key.startswith(("packages/", "simple/", "site/")):
                backend.put_object(bucket, info.key, local.get(info.key)[1])
    return S3Store(bucket, client)


def requests_to_index(store: Any, project: str, version: str) -> tuple[int, float]:
    """How many S3 requests indexing one new wheel of ``project`` makes, and its seconds."""
    from skypi.indexer.service import Indexer, Landed

    key = f"packages/{project}/{wheel_name(project, version)}"
    store.put(key, wheel_bytes(project, version))
    asked: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        asked[model.name] += 1

    store.client.meta.events.register("provide-client-params.s3.*", count)
    started = time.perf_counter()
    try:
        Indexer(store).apply([Landed(key)])
    finally:
        store.client.meta.events.unregister("provide-client-params.s3.*", count)
    return sum(asked.values()), time.perf_counter() - started


def run(sizes: list[int]) -> list[dict[str, Any]]:
    """One row per size: a new file of a known project, and a first file of a new project."""
    from skypi.local.emulator import start_moto

    server, endpoint = start_moto()
    rows = []
    try:
        for size in sizes:
            store = seeded_store(endpoint, size)
            existing, existing_s = requests_to_index(store, seed_project(min(3, size - 1)), "9.0")
            new, new_s = requests_to_index(store, "brand-new", "1.0")
            rows.append(
                {
                    "projects": size,
                    "existing_requests": existing,
                    "existing_s": existing_s,
                    "new_requests": new,
                    "new_s": new_s,
                }
            )
            print(f"  S3, {size} projects: {existing} requests (known), {new} (new project)")
    finally:
        server.stop()
    return rows
