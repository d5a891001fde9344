"""S3 requests and bytes written by one upload, against the number of projects stored (moto).

Against a moto server on loopback (in this process), through skypi's public parts: one more
wheel is put through the S3 adapter and indexed there (``Indexer.apply``, as the API indexes an
upload and the indexer Lambda a drop-in), while botocore's event hooks count the operations
the indexer asks for and the bytes of each PutObject, by key family (:class:`RequestLog`;
retries are not counted again). Once into a known project, once starting a new one.

The store is seeded directly, not by uploads (100,000 of them would take hours on moto): the
first project is indexed by skypi's Indexer (in a folder); every other project's wheel and
JSON page are derived from it with its own name, digest and size (the derivation is checked
against the Indexer's page for the first one); the root listing and the landing page are
written for all of them at once by skypi's PageWriter, so they are what its own render
functions make. All of it is put into moto's backend in memory. The seeded projects'
``.metadata``, HTML twins and pages for people are not stored: indexing a file of another
project reads none of them.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.dists import metadata_text, wheel_bytes, wheel_name
from skypi.core.keys import PACKAGES_PREFIX, family_of, page_json_key

MOTO_ACCOUNT = "123456789012"  # moto's default account
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
KNOWN = 3  # the seeded project a known project's upload goes to


def seed_project(i: int) -> str:
    return f"seed-{i:06d}"


# -- counting requests --------------------------------------------------------------------


def kind_of(key: str | None) -> str:
    """A key's family in the key layout (what a request touched)."""
    family = family_of(key) if key else None
    return family.name if family is not None else "other"


class RequestLog:
    """The S3 requests a client makes, by operation and key family; the bytes it writes, by
    family; and the conditional writes storage refused (412: a lost compare-and-swap).
    botocore's event hooks: a retried call counts once."""

    def __init__(self, client: Any) -> None:
        self.asked: Counter[str] = Counter()
        self.lost: Counter[str] = Counter()
        self.written: Counter[str] = Counter()
        self.stored: Counter[str] = Counter()  # PutObject answered 200, by key
        self._lock = threading.Lock()
        self._events = client.meta.events
        self._events.register("provide-client-params.s3.*", self._asked)
        self._events.register("after-call.s3.*", self._answered)

    def close(self) -> None:
        self._events.unregister("provide-client-params.s3.*", self._asked)
        self._events.unregister("after-call.s3.*", self._answered)

    def _asked(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        kind = kind_of(params.get("Key"))
        context["bench_kind"], context["bench_key"] = kind, params.get("Key")
        body = params.get("Body")
        with self._lock:
            self.asked[f"{model.name} {kind}"] += 1
            if model.name == "PutObject" and isinstance(body, bytes):
                self.written[kind] += len(body)

    def _answered(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            if http_response.status_code == 412:
                self.lost[f"{model.name} {context.get('bench_kind', 'other')}"] += 1
            elif http_response.status_code == 200 and model.name == "PutObject":
                self.stored[str(context.get("bench_key"))] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "asked": dict(self.asked),
                "lost": dict(self.lost),
                "written": dict(self.written),
            }


# -- seeding ------------------------------------------------------------------------------


def seed_objects(projects: int, scratch: Path) -> Iterator[tuple[str, bytes]]:
    """(key, bytes) of a store of ``projects`` projects of one wheel each (see the module)."""
    from skypi.core.pages import ProjectPage, root_entry
    from skypi.indexer.service import Indexer, Landed
    from skypi.indexer.writer import PageWriter
    from skypi.store.local import LocalStore

    local = LocalStore(scratch / "packages", scratch / "state")
    first = seed_project(0)
    first_key = f"{PACKAGES_PREFIX}{first}/{wheel_name(first, '1.0')}"
    local.put(first_key, wheel_bytes(first, "1.0"))
    Indexer(local).apply([Landed(first_key)])
    indexed = ProjectPage.from_json_bytes(local.get(page_json_key(first))[1])
    shown = {}
    for i in range(projects):
        name, filename = seed_project(i), wheel_name(seed_project(i), "1.0")
        data = wheel_bytes(name, "1.0")
        entry = replace(
            indexed.files[0],
            filename=filename,
            key=f"{PACKAGES_PREFIX}{name}/{filename}",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            metadata_sha256=hashlib.sha256(metadata_text(name, "1.0").encode()).hexdigest(),
            etag=f'"{hashlib.md5(data).hexdigest()}"',  # noqa: S324 - S3's ETag of one PUT
        )
        page = replace(indexed, name=name, display_name=name, files=(entry,))
        if i == 0:  # the derivation makes the Indexer's page (but for the ETag, S3's here)
            assert page == replace(indexed, files=(replace(indexed.files[0], etag=entry.etag),))
        shown[page.name] = root_entry(page)
        yield entry.key, data
        yield page_json_key(name), page.to_json_bytes()
    pages = PageWriter(local)
    pages.update_landing([], pages.update_root(shown))  # the root listing, for all at once
    for info in local.list(""):
        if not info.key.startswith(PACKAGES_PREFIX) and info.key != page_json_key(first):
            yield info.key, local.get(info.key)[1]


def seeded_store(endpoint: str, projects: int) -> tuple[Any, float]:
    """A fresh versioned bucket holding ``projects`` indexed projects; and the seconds the
    seeding took."""
    from moto.s3.models import s3_backends

    from skypi.store.s3 import S3Store, s3_client

    started = time.perf_counter()
    client = s3_client(endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    bucket = f"skypi-bench-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    backend = s3_backends[MOTO_ACCOUNT]["aws"]
    with tempfile.TemporaryDirectory(prefix="skypi-bench-seed-") as tmp:
        for key, data in seed_objects(projects, Path(tmp)):
            backend.put_object(bucket, key, data)
    return S3Store(bucket, client), time.perf_counter() - started


# -- measuring ----------------------------------------------------------------------------

BURST = 10  # new projects whose root changes one rebuild merges (a burst within its window)
ROOT_OBJECTS = {"json": "simple/index.json", "html (each twin)": "simple/index.html"}


class Asked:
    """Where the indexer asks for a rebuild of the root listing: on AWS, one SQS SendMessage
    on its own queue (``skypi.store.rebuilds``), counted here as one request."""

    def __init__(self) -> None:
        self.count = 0

    def request(self, delay: int) -> None:
        self.count += 1


def _measured(store: Any, asked: Asked, work: Any) -> dict[str, Any]:
    """The S3 requests (and SendMessages) ``work()`` asks for, its bytes written and seconds."""
    log = RequestLog(store.client)
    before = asked.count
    started = time.perf_counter()
    try:
        work()
    finally:
        log.close()
    seen = log.snapshot()
    if asked.count > before:
        seen["asked"]["SendMessage indexer queue"] = asked.count - before
    return {
        "requests": sum(seen["asked"].values()),
        "bytes": sum(seen["written"].values()),
        "seconds": time.perf_counter() - started,
        "asked": seen["asked"],
        "written": seen["written"],
    }


def one_upload(
    store: Any, project: str, version: str, asked: Asked | None = None
) -> dict[str, Any]:
    """What indexing one new wheel of ``project`` asks of S3: requests, bytes written (each
    by key family) and its seconds. ``asked``: the root listing deferred to a rebuild, as on
    AWS (none: written by the batch, as in a folder)."""
    from skypi.indexer.service import Indexer, Landed

    key = f"{PACKAGES_PREFIX}{project}/{wheel_name(project, version)}"
    store.put(key, wheel_bytes(project, version))
    indexer = Indexer(store, rebuilds=asked)
    return _measured(store, asked or Asked(), lambda: indexer.apply([Landed(key)]))


def one_rebuild(store: Any, asked: Asked) -> dict[str, Any]:
    """What the rebuild asked for costs: every pending project merged into the root listing."""
    from skypi.indexer.service import Indexer

    indexer = Indexer(store, rebuilds=asked)
    return _measured(store, asked, indexer.rebuild_root)


def one_size(endpoint: str, size: int) -> dict[str, Any]:
    """A known project's upload and a new project's, the root listing deferred (AWS); the
    rebuild that merges a burst of :data:`BURST` new projects; and a new project whose batch
    writes the listing itself (a folder's way, and AWS's before the listing was deferred)."""
    store, seed_s = seeded_store(endpoint, size)
    asked = Asked()
    known = one_upload(store, seed_project(min(KNOWN, size - 1)), "9.0", asked)
    new = one_upload(store, "brand-new", "1.0", asked)
    for i in range(1, BURST):
        one_upload(store, f"brand-new-{i}", "1.0", asked)
    rebuild = one_rebuild(store, asked)
    objects = {what: store.head(key).size for what, key in ROOT_OBJECTS.items()}
    at_once = one_upload(store, "at-once", "1.0")
    _forget(store.bucket)
    return {
        "projects": size,
        "seed_s": seed_s,
        "existing_requests": known["requests"],
        "existing_bytes": known["bytes"],
        "existing_s": known["seconds"],
        "existing": known,
        "new_requests": new["requests"],
        "new_bytes": new["bytes"],
        "new_s": new["seconds"],
        "new": new,
        "burst": BURST,
        "rebuild_requests": rebuild["requests"],
        "rebuild_bytes": rebuild["bytes"],
        "rebuild_s": rebuild["seconds"],
        "rebuild": rebuild,
        "at_once_requests": at_once["requests"],
        "at_once_bytes": at_once["bytes"],
        "at_once": at_once,
        "root_objects": objects,
    }


def run(sizes: list[int]) -> list[dict[str, Any]]:
    """One row per size (:func:`one_size`)."""
    from skypi.local.emulator import start_moto

    server, endpoint = start_moto()
    rows = []
    try:
        for size in sizes:
            row = one_size(endpoint, size)
            rows.append(row)
            print(
                f"  S3, {size:,} projects (seeded in {row['seed_s']:.0f} s): known project "
                f"{row['existing_requests']} requests, {row['existing_bytes']:,} bytes written; "
                f"new project {row['new_requests']} requests, {row['new_bytes']:,} bytes; "
                f"the rebuild of {BURST} new projects {row['rebuild_requests']} requests, "
                f"{row['rebuild_bytes']:,} bytes; a new project written at once "
                f"{row['at_once_bytes']:,} bytes",
                flush=True,
            )
    finally:
        server.stop()
    return rows


def _forget(bucket: str) -> None:
    """Drop a measured bucket from moto's memory (100,000 projects hold about a gigabyte)."""
    from moto.s3.models import s3_backends

    s3_backends[MOTO_ACCOUNT]["aws"].buckets.pop(bucket, None)
