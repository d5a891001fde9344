"""Work proportional to the change: the S3 requests of indexing one file do not grow with the
bucket (no listing on the hot path), and concurrent uploads through the S3 adapter lose nothing."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

from packaging.utils import canonicalize_name

from skypi.api.publish import Publisher
from skypi.core.filenames import parse_filename
from skypi.core.pages import FileEntry, ProjectPage, RootListing, html_twins
from skypi.core.render import render_project_html, render_root_html
from skypi.core.upload import validate_filename, validate_form
from skypi.indexer.service import Indexer, Landed
from skypi.store.s3 import S3Store
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.emulated import RequestCounter, s3_store


def _seed(store: S3Store, projects: int) -> None:
    """``projects`` indexed projects of one file each, written straight into moto's backend
    (through HTTP it would take minutes at 2,000 and test nothing more)."""
    from moto.s3.models import s3_backends

    backend = s3_backends["123456789012"]["aws"]
    data = wheel_bytes("seed", "1.0")
    root = RootListing()
    for i in range(projects):
        name = f"project-{i:05d}"
        filename = wheel_name(name, "1.0")
        key = f"packages/{name}/{filename}"
        backend.put_object(store.bucket, key, data)
        entry = FileEntry(
            filename=filename,
            key=key,
            version="1.0",
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            upload_time=datetime(2026, 1, 1, tzinfo=UTC),
            etag=f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
        )
        # As skypi indexes it: the page carries its newest release's summary.
        page = replace(ProjectPage.empty(name).with_files((entry,)), summary="A test package")
        backend.put_object(store.bucket, f"simple/{name}/index.json", page.to_json_bytes())
        for html_key in html_twins(f"simple/{name}/index.html"):
            backend.put_object(store.bucket, html_key, render_project_html(page))
        root = root.with_project(canonicalize_name(name), name, page.summary)
    backend.put_object(store.bucket, "simple/index.json", root.to_json_bytes())
    for html_key in html_twins("simple/index.html"):
        backend.put_object(store.bucket, html_key, render_root_html(root))


def _requests_to_index(store: S3Store, project: str, version: str) -> Counter[tuple[str, str]]:
    key = f"packages/{project}/{wheel_name(project, version)}"
    store.put(key, wheel_bytes(project, version))
    counter = RequestCounter(store.client)
    outcome = Indexer(store).apply([Landed(key)])
    assert outcome.added == [wheel_name(project, version)]
    names = (wheel_name(project, version).split("-")[0], project)
    return Counter(
        (operation, key.replace(names[0], "P").replace(names[1], "P"))
        for operation, key in counter.requests
    )


def test_indexing_one_file_costs_the_same_at_10_and_2000_projects(moto_endpoint: str) -> None:
    costs = {}
    for size in (10, 2000):
        store = s3_store(moto_endpoint, versioned=True)
        _seed(store, size)
        assert sum(1 for _ in store.list("simple/")) == 3 * size + 3
        costs[size] = (
            _requests_to_index(store, "project-00003", "2.0"),  # a new file of a known project
            _requests_to_index(store, "brand-new", "2.0"),  # a new project: the root changes
        )
    assert costs[10] == costs[2000]
    existing, new = costs[2000]
    for cost in (existing, new):
        assert not [r for r in cost if r[0].startswith("List")]
    assert not [r for r in existing if r[1].startswith("simple/index.")]
    extra = new - existing
    assert existing - new == Counter()
    # A new project adds the root listing (read, write, render, each with its gzip variant),
    # one re-read of its page, and the landing page's project count.
    root = {f"simple/index.{kind}{gz}" for kind in ("json", "html", "v1html") for gz in ("", ".gz")}
    landing = {"site/index.json", "site/index.html"}
    assert {key for _, key in extra} == root | landing | {"simple/P/index.json"}


def test_fifty_concurrent_uploads_to_one_project_all_listed(moto_endpoint: str) -> None:
    store = s3_store(moto_endpoint)
    publisher = Publisher(store, Indexer(store), max_size=10 * 1024 * 1024)

    def upload(i: int) -> None:
        version = f"1.{i}"
        data = wheel_bytes("crowd", version)
        filename = wheel_name("crowd", version)
        fields = {k: [v] for k, v in upload_form(data, filename, "crowd", version).items()}
        form = validate_form(fields)
        publisher.publish(form, validate_filename(form, filename), io.BytesIO(data))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(upload, range(50)))
    page = ProjectPage.from_json_bytes(store.get("simple/crowd/index.json")[1])
    html = store.get("simple/crowd/index.html")[1].decode()
    assert len(page.files) == 50
    assert all(f">{wheel_name('crowd', f'1.{i}')}</a>" in html for i in range(50))
    assert parse_filename(page.files[0].filename).project == "crowd"
