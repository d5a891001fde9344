"""Work proportional to the change: the S3 requests of indexing one file do not grow with the
bucket (no listing on the hot path), an upload reads nothing it already had, a batch writes the
root listing once, and concurrent uploads through the S3 adapter lose nothing."""

from __future__ import annotations

import hashlib
import io
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

from packaging.utils import canonicalize_name

from skypi.api.publish import Uploader
from skypi.core.filenames import parse_filename
from skypi.core.keys import NAMESPACE_RECORDS_KEY, PAGE_OBJECTS, gzip_key, page_key, view_key
from skypi.core.pages import FileEntry, ProjectPage, RootEntry, RootListing, html_twins
from skypi.core.render import render_project_html, render_root_html
from skypi.core.upload import validate_filename, validate_form
from skypi.indexer.service import Indexer, Landed
from skypi.indexer.views import Views, _page_keys
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
        root = root.with_projects({canonicalize_name(name): RootEntry(name, page.summary)})
    backend.put_object(store.bucket, "simple/index.json", root.to_json_bytes())
    for html_key in html_twins("simple/index.html"):
        backend.put_object(store.bucket, html_key, render_root_html(root))


def _requests_to_index(
    store: S3Store, project: str, version: str, indexer: Indexer | None = None
) -> Counter[tuple[str, str]]:
    key = f"packages/{project}/{wheel_name(project, version)}"
    store.put(key, wheel_bytes(project, version))
    counter = RequestCounter(store.client)
    outcome = (indexer or Indexer(store)).apply([Landed(key)])
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
        indexer = Indexer(store)  # one process (an indexer Lambda's container) for both
        _requests_to_index(store, "warm-up", "1.0", indexer)
        costs[size] = (
            _requests_to_index(store, "project-00003", "2.0", indexer),  # a known project
            _requests_to_index(store, "brand-new", "2.0", indexer),  # a new one: the root changes
        )
    assert costs[10] == costs[2000]
    existing, new = costs[2000]
    assert not [r for r in existing if r[0].startswith("List")]
    # a new project's one listing: the views' folders (one request, however many objects
    # they hold), whose stored pages of the name it would delete (Views.yield_to_private)
    assert [r for r in new if r[0].startswith("List")] == [("ListObjectsV2", "views/")]
    assert not [r for r in existing if r[1].startswith("simple/index.")]
    # A drop-in is confirmed (HEAD) and read once, whole: its metadata and its digest; once
    # listed, it is looked at again (HEAD): a file deleted meanwhile is not left listed.
    assert existing[("HeadObject", "packages/P/P-2.0-py3-none-any.whl")] == 2
    assert existing[("GetObject", "packages/P/P-2.0-py3-none-any.whl")] == 1
    assert sum(existing.values()) == 15  # 28 before the page writer
    extra = new - existing
    assert existing - new == Counter()
    # A new project adds the root listing (swap, variant, twins, one look), one more look at
    # its page, taken after the listing's ETag (the listing shows the page as it is then), and
    # one read of the namespaces' records (PEP 752: which namespaces cover it; may it start?),
    # and one listing of the views (none here) that may have stored the name from upstream.
    assert {key for _, key in extra} == ROOT | {
        "simple/P/index.json",
        NAMESPACE_RECORDS_KEY,
        "views/",
    }
    assert extra[("HeadObject", "simple/P/index.json")] == 1
    assert extra[("GetObject", NAMESPACE_RECORDS_KEY)] == 1


def test_fifty_concurrent_uploads_to_one_project_all_listed(moto_endpoint: str) -> None:
    store = s3_store(moto_endpoint)
    uploader = Uploader(store, Indexer(store), max_size=10 * 1024 * 1024)

    def upload(i: int) -> None:
        version = f"1.{i}"
        data = wheel_bytes("crowd", version)
        filename = wheel_name("crowd", version)
        fields = {k: [v] for k, v in upload_form(data, filename, "crowd", version).items()}
        form = validate_form(fields)
        uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(upload, range(50)))
    page = ProjectPage.from_json_bytes(store.get("simple/crowd/index.json")[1])
    html = store.get("simple/crowd/index.html")[1].decode()
    assert len(page.files) == 50
    assert all(f">{wheel_name('crowd', f'1.{i}')}</a>" in html for i in range(50))
    assert parse_filename(page.files[0].filename).project == "crowd"


def _upload(uploader: Uploader, project: str, version: str) -> None:
    data = wheel_bytes(project, version)
    filename = wheel_name(project, version)
    fields = {k: [v] for k, v in upload_form(data, filename, project, version).items()}
    form = validate_form(fields)
    uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))


def _upload_cost(store: S3Store, uploader: Uploader, project: str, version: str) -> Counter[str]:
    counter = RequestCounter(store.client)
    _upload(uploader, project, version)
    names = (wheel_name(project, version).split("-")[0], project)
    return Counter(
        f"{operation} {key.replace(names[0], 'P').replace(names[1], 'P').replace(version, 'V')}"
        for operation, key in counter.requests
    )


# What an upload writes besides its file and the project's JSON page: the page's gzip
# variant, its HTML twins with theirs, and the project's page for people.
FOLLOWERS = {
    "simple/P/index.json.gz",
    "simple/P/index.html",
    "simple/P/index.html.gz",
    "simple/P/index.v1html",
    "simple/P/index.v1html.gz",
    "site/project/P/index.html",
}
ROOT = {f"simple/index.{kind}{gz}" for kind in ("json", "html", "v1html") for gz in ("", ".gz")}
# The objects an upload wrote when the goals of 8 and 12 requests were set (the pages' gzip
# variants and the pages for people came later): file, .metadata, JSON page, HTML twins, root.
ORIGINAL = {
    "packages/P/P-V-py3-none-any.whl",
    "packages/P/P-V-py3-none-any.whl.metadata",
    "simple/P/index.json",
    "simple/P/index.html",
    "simple/P/index.v1html",
    "simple/index.json",
    "simple/index.html",
    "simple/index.v1html",
}


def test_an_api_upload_reads_nothing_it_already_had(moto_endpoint: str) -> None:
    """An upload through the API reads its project's page once (to decide) and then only
    writes: the file, its .metadata, the page and what follows it, checked once (HEAD)."""
    store = s3_store(moto_endpoint, versioned=True)
    _seed(store, 10)
    uploader = Uploader(store, Indexer(store), max_size=10 * 1024 * 1024)
    _upload(uploader, "warm-up", "1.0")  # a running API Lambda has met the landing page
    known = _upload_cost(store, uploader, "project-00003", "2.0")
    assert known == Counter(
        [
            "GetObject simple/P/index.json",  # admission: the page and its ETag
            "PutObject packages/P/P-V-py3-none-any.whl",
            "PutObject packages/P/P-V-py3-none-any.whl.metadata",
            "PutObject simple/P/index.json",  # If-Match the ETag read
            *(f"PutObject {key}" for key in FOLLOWERS),
            "HeadObject simple/P/index.json",  # the followers follow the newest page
            # once listed, the file is looked at again: one deleted meanwhile is not left listed
            "HeadObject packages/P/P-V-py3-none-any.whl",
            "PutObject site/project/P/V.json",  # a new release's description, once
            "PutObject site/index.html",  # the landing page's last uploads (kept ETag)
        ]
    )
    assert sum(known.values()) == 14
    assert sum(n for r, n in known.items() if r.split()[1] in ORIGINAL) == 8  # goal: 8

    new = _upload_cost(store, uploader, "brand-new", "1.0")
    extra = new - known
    assert not known - new
    # A new project adds the root listing: its swap (no read: this process wrote it last),
    # its variant and twins, one look at it, one more look at the project's page, taken
    # after the listing's ETag (the listing shows the page as it is then), and one read of
    # the namespaces' records (PEP 752: which namespaces cover the new page), and one listing
    # of the views' folders (a name published here leaves every view at once).
    assert extra == Counter(
        [
            *(f"PutObject {key}" for key in ROOT),
            "HeadObject simple/index.json",
            "HeadObject simple/P/index.json",
            f"GetObject {NAMESPACE_RECORDS_KEY}",
            "ListObjectsV2 views/",
        ]
    )
    assert sum(new.values()) == 24  # 23 before the views' listing
    # goal: 12; the one over it is the look at the file once listed (invariant 10)
    assert sum(n for r, n in new.items() if r.split()[1] in ORIGINAL) == 13


def test_a_batch_of_fifty_new_projects_writes_the_root_listing_once(moto_endpoint: str) -> None:
    store = s3_store(moto_endpoint)
    _seed(store, 10)
    keys = []
    for i in range(50):
        name = f"arrival-{i:02d}"
        key = f"packages/{name}/{wheel_name(name, '1.0')}"
        store.put(key, wheel_bytes(name, "1.0"))
        keys.append(key)
    counter = RequestCounter(store.client)
    outcome = Indexer(store).apply([Landed(key) for key in keys])
    assert len(outcome.added) == 50
    writes = Counter(key for operation, key in counter.requests if operation == "PutObject")
    assert writes["simple/index.json"] == 1
    assert writes["simple/index.html"] == 1
    assert writes["site/index.html"] == 1
    assert all(writes[f"simple/arrival-{i:02d}/index.json"] == 1 for i in range(50))
    root = RootListing.from_json_bytes(store.get("simple/index.json")[1])
    assert len(root.projects) == 60


class _Asked:
    """Where a rebuild of the root listing is asked for (on AWS, one SQS SendMessage)."""

    def __init__(self) -> None:
        self.delays: list[int] = []

    def request(self, delay: int) -> None:
        self.delays.append(delay)


def _written(counter: RequestCounter, store: S3Store) -> int:
    """The bytes of the PutObjects ``counter`` saw, read back from storage (each key once)."""
    keys = {key for operation, key in counter.requests if operation == "PutObject"}
    return sum(info.size for key in keys if (info := store.head(key)) is not None)


def test_a_new_project_with_the_listing_deferred_costs_the_same_at_10_and_2000_projects(
    moto_endpoint: str,
) -> None:
    """On AWS a new project's upload records it for the root listing's next rebuild: it
    writes no byte of the listing, so its requests and bytes do not grow with the bucket."""
    costs, sizes = {}, {}
    for size in (10, 2000):
        store = s3_store(moto_endpoint, versioned=True)
        _seed(store, size)
        asked = _Asked()
        uploader = Uploader(store, Indexer(store, rebuilds=asked), max_size=10 * 1024 * 1024)
        _upload(uploader, "warm-up", "1.0")
        counter = RequestCounter(store.client)
        _upload(uploader, "brand-new", "1.0")
        costs[size] = Counter(
            f"{op} {key.replace('brand_new', 'P').replace('brand-new', 'P')}"
            for op, key in counter.requests
        )
        sizes[size] = _written(counter, store)
        assert len(asked.delays) == 1  # the warm-up asked; this one found the rebuild due
    assert costs[10] == costs[2000]
    assert not [r for r in costs[2000] if r.split()[1].startswith("simple/index.")]
    assert costs[2000]["PutObject pending/root/P.json"] == 1
    assert costs[2000]["PutObject pending/root-due.json"] == 1  # refused: a rebuild is due
    assert costs[2000]["HeadObject pending/root-due.json"] == 1  # how old it is
    # a known project's 14, the namespaces' records, the record, the rebuild due (refused
    # here: the warm-up's is there), one look at its age and the views' listing: 24 when the
    # batch wrote the listing (18 before the views' listing)
    assert costs[2000]["ListObjectsV2 views/"] == 1
    assert sum(costs[2000].values()) == 19
    assert abs(sizes[2000] - sizes[10]) < 200  # the same objects, a few digits apart


def test_one_rebuild_merges_a_burst_and_writes_the_root_listing_once(moto_endpoint: str) -> None:
    store = s3_store(moto_endpoint)
    _seed(store, 10)
    asked = _Asked()
    indexer = Indexer(store, rebuilds=asked, root_delay=60)
    for i in range(20):  # twenty batches, as twenty uploads or drop-ins in a window
        name = f"arrival-{i:02d}"
        key = f"packages/{name}/{wheel_name(name, '1.0')}"
        store.put(key, wheel_bytes(name, "1.0"))
        indexer.apply([Landed(key)])
    assert asked.delays == [60]
    counter = RequestCounter(store.client)
    assert indexer.rebuild_root() is not None
    writes = Counter(key for operation, key in counter.requests if operation == "PutObject")
    assert {key: writes[key] for key in ROOT} == dict.fromkeys(ROOT, 1)
    assert writes["site/index.html"] == 1  # the count
    deletes = Counter(key for operation, key in counter.requests if operation == "DeleteObject")
    assert sum(deletes.values()) == 21  # each record merged, and the rebuild due
    assert [r[0] for r in counter.requests if r[0].startswith("List")] == ["ListObjectsV2"]
    root = RootListing.from_json_bytes(store.get("simple/index.json")[1])
    assert len(root.projects) == 30


def test_a_new_private_project_looks_once_at_each_view_and_deletes_only_what_one_stored(
    moto_endpoint: str,
) -> None:
    """With two views, one of which stored the name from upstream: one listing of the views'
    folders, one look at each view's page of the name, and only where one is stored, its six
    deletes and its served names' swap. A known project's upload costs nothing of this."""
    store = s3_store(moto_endpoint, versioned=True)
    _seed(store, 10)
    for view in ("one", "two"):
        store.put(f"views/{view}/policy.json", b"{}")  # the listing looks at folders only
    views = Views(store)
    for kind, key in ((k, page_key("brand-new", k)) for k in PAGE_OBJECTS):
        store.put(view_key("one", key), b"{}" if kind == "json" else b"")
        store.put(gzip_key(view_key("one", key)), b"")
    views._served("one", "brand-new", add=True)
    uploader = Uploader(store, Indexer(store), max_size=10 * 1024 * 1024)
    _upload(uploader, "warm-up", "1.0")
    known = _upload_cost(store, uploader, "project-00003", "2.0")
    assert not [r for r in known if r.split()[1].startswith("views/")]
    new = _upload_cost(store, uploader, "brand-new", "1.0")
    looked = Counter(r for r in new.elements() if r.split()[1].startswith("views/"))
    assert looked == Counter(
        [
            "ListObjectsV2 views/",
            "HeadObject views/one/simple/P/index.json",
            "HeadObject views/two/simple/P/index.json",
            *(f"DeleteObject {k}" for k in _page_keys("one", "P")),
            "GetObject views/one/simple/index.json",  # the served names, swapped
            "PutObject views/one/simple/index.json",
        ]
    )
    assert not list(store.list("views/one/simple/brand-new/"))
    assert views.served("one") == []


def test_keys_under_views_that_name_no_view_are_skipped_not_an_error(moto_endpoint: str) -> None:
    """Keys written by hand into the bucket (``views//x``, ``views/../x``) make folders that
    no view key can be built for: a new project's look at the views skips them."""
    store = s3_store(moto_endpoint)
    for key in ("views//x", "views/../x", "views/./x"):
        store.client.put_object(Bucket=store.bucket, Key=key, Body=b"")
    assert Views(store).yield_to_private("brand-new") == []
