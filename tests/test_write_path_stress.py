"""Many writers at once, each with its own indexer (as separate processes are): uploads to one
project and to many new ones, deletes and yanks racing them, and rebuilds running meanwhile.
Whatever the interleaving, the index ends consistent: every invariant below holds, and a check
finds no drift. (Threads race for real here; the assertions hold for every interleaving, so
the test never depends on timing.)"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import random
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from skypi.api.publish import Uploader
from skypi.core.errors import DoesNotExist, UploadRejected
from skypi.core.landing import SiteSummary
from skypi.core.pages import PACKAGES_PREFIX, ProjectPage, RootListing, html_twins
from skypi.core.render import render_project_html, render_root_html
from skypi.core.upload import validate_filename, validate_form
from skypi.indexer.admin import Admin
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer, Landed
from skypi.store.base import NotFound, Store
from skypi.store.local import LocalStore
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.emulated import s3_store


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "packages")
    return s3_store(request.getfixturevalue("moto_endpoint"))


def _get(store: Store, key: str) -> bytes:
    return store.get(key)[1]


def assert_consistent(store: Store) -> None:
    """The invariants of an index at rest."""
    stored = {i.key for i in store.list(PACKAGES_PREFIX) if not i.key.endswith(".metadata")}
    pages: dict[str, ProjectPage] = {}
    for info in store.list("simple/"):
        parts = info.key.split("/")
        if len(parts) == 3 and parts[2] == "index.json":
            pages[parts[1]] = ProjectPage.from_json_bytes(_get(store, info.key))
    listed: set[str] = set()
    for name, page in pages.items():
        keys = [f.key for f in page.files]
        assert len(keys) == len(set(keys)), f"{name}: a file listed twice"
        assert len({f.filename for f in page.files}) == len(keys), f"{name}: a name twice"
        listed |= set(keys)
        body = _get(store, f"simple/{name}/index.json")
        assert gzip.decompress(_get(store, f"simple/{name}/index.json.gz")) == body
        html = render_project_html(page)
        for key in html_twins(f"simple/{name}/index.html"):
            assert _get(store, key) == html, f"{key} is not the render of its JSON page"
            assert gzip.decompress(_get(store, f"{key}.gz")) == html
        if page.files:
            newest = page.latest_version
            site = _get(store, f"site/project/{name}/index.html").decode()
            assert f"<small>{newest}</small>" in site, f"{name}: the site page is behind"
    assert listed == stored, "storage and pages disagree"
    derived = {i.key for i in store.list(PACKAGES_PREFIX) if i.key.endswith(".metadata")}
    wanted = {f"{f.key}.metadata" for p in pages.values() for f in p.files if f.metadata_sha256}
    assert derived == wanted, "a .metadata file missing or left behind"
    root = RootListing.from_json_bytes(_get(store, "simple/index.json"))
    assert set(root.projects) == {n for n, p in pages.items() if p.files}
    for name in root.projects:
        assert root.summaries.get(name, "") == pages[name].summary
    assert gzip.decompress(_get(store, "simple/index.json.gz")) == _get(store, "simple/index.json")
    for key in html_twins("simple/index.html"):
        assert _get(store, key) == render_root_html(root)
    landing = SiteSummary.from_landing(_get(store, "site/index.html"))
    assert landing is not None
    assert landing.projects == len(root.projects)
    assert Rebuilder(Indexer(store)).run(check=True).drift == []


def _drop(store: Store, project: str, version: str) -> str:
    key = f"{PACKAGES_PREFIX}{project}/{wheel_name(project, version)}"
    store.put(key, wheel_bytes(project, version))
    return key


def test_writers_racing_uploads_deletes_yanks_and_rebuilds_leave_a_consistent_index(
    any_store: Store,
) -> None:
    store = any_store
    indexers = [Indexer(store) for _ in range(4)]  # four processes
    seed = Indexer(store)
    seed.apply([Landed(_drop(store, "hot", f"0.{i}")) for i in range(5)])
    rng = random.Random(7)

    def upload_hot(i: int) -> None:
        indexers[i % 4].apply([Landed(_drop(store, "hot", f"1.{i}"))])

    def new_project(i: int) -> None:
        indexers[(i + 1) % 4].apply([Landed(_drop(store, f"new-{i}", "1.0"))])

    def delete(i: int) -> None:
        page = indexers[(i + 2) % 4].pages.read(ProjectPage.empty("hot").name).page
        if page is None or not page.files:
            return
        entry = rng.choice(page.files)
        with contextlib.suppress(DoesNotExist, NotFound):  # deleted by another writer first
            Admin(indexers[(i + 2) % 4]).delete("hot", entry.filename)

    def yank(i: int) -> None:
        with contextlib.suppress(DoesNotExist):  # not listed yet, or deleted
            Admin(indexers[(i + 3) % 4]).yank("hot", version=f"1.{i}", reason="bad")

    def rebuild(_: int) -> None:
        Rebuilder(Indexer(store), workers=2).run(check=False)

    work: list[Callable[[], None]] = []
    for i in range(18):
        work += [lambda i=i: upload_hot(i), lambda i=i: new_project(i)]  # type: ignore[misc]
        if i % 3 == 0:
            work.append(lambda i=i: delete(i))  # type: ignore[misc]
        if i % 4 == 1:
            work.append(lambda i=i: yank(i))  # type: ignore[misc]
        if i % 8 == 0:
            work.append(lambda i=i: rebuild(i))  # type: ignore[misc]
    rng.shuffle(work)
    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(job) for job in work]:
            future.result()
    assert_consistent(store)


_PROCESS = """
import sys
from pathlib import Path
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from tests.dists import upload_form, wheel_bytes, wheel_name

folder, me = Path(sys.argv[1]), int(sys.argv[2])
store = LocalStore(folder)
indexer = Indexer(store)
for i in range(15):
    for project, version in (("shared", f"{me}.{i}"), (f"own-{me}-{i}", "1.0")):
        key = f"packages/{project}/{wheel_name(project, version)}"
        store.put(key, wheel_bytes(project, version))
        indexer.apply([Landed(key)])
"""


def test_processes_indexing_one_folder_at_once_leave_a_consistent_index(tmp_path: Path) -> None:
    """Separate processes (``skypi serve`` and a watcher, say) on one folder: the file lock
    orders their compare-and-swaps."""
    folder = tmp_path / "packages"
    LocalStore(folder)
    script = tmp_path / "writer.py"
    script.write_text(_PROCESS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, str(script), str(folder), str(me)], env=env)
        for me in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    store = LocalStore(folder)
    page = ProjectPage.from_json_bytes(_get(store, "simple/shared/index.json"))
    assert len(page.files) == 45
    assert len(RootListing.from_json_bytes(_get(store, "simple/index.json")).projects) == 46
    assert_consistent(store)


def _publish(uploader: Uploader, project: str, version: str, payload: bytes = b"") -> None:
    data = wheel_bytes(project, version, payload=payload)
    filename = wheel_name(project, version)
    fields = {k: [v] for k, v in upload_form(data, filename, project, version).items()}
    form = validate_form(fields)
    uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))


def test_api_uploads_racing_for_filenames_deletes_and_yanks_leave_a_consistent_index(
    any_store: Store,
) -> None:
    """Through the upload API (two processes): uploads of one filename with different bytes
    (one wins, the others are refused and leave nothing), identical re-uploads, new
    projects, and deletes and yanks of what was listed."""
    store = any_store
    indexers = [Indexer(store) for _ in range(2)]
    uploaders = [Uploader(store, indexer, max_size=10 * 1024 * 1024) for indexer in indexers]
    won: list[bytes] = []

    def contested(i: int) -> None:
        try:
            _publish(uploaders[i % 2], "crowd", "9.0", payload=f"variant {i}".encode())
            won.append(f"variant {i}".encode())
        except UploadRejected:
            pass  # another variant was first

    def again(i: int) -> None:
        _publish(uploaders[i % 2], "crowd", f"1.{i % 4}")  # identical bytes: all succeed

    def fresh(i: int) -> None:
        _publish(uploaders[i % 2], f"api-{i}", "1.0")

    def delete(i: int) -> None:
        with contextlib.suppress(DoesNotExist, NotFound):
            Admin(indexers[i % 2]).delete("crowd", wheel_name("crowd", f"1.{i % 4}"))

    def yank(i: int) -> None:
        with contextlib.suppress(DoesNotExist):
            Admin(indexers[i % 2]).yank("crowd", version=f"1.{i % 4}")

    work: list[Callable[[], None]] = []
    for i in range(12):
        work += [lambda i=i: contested(i), lambda i=i: again(i), lambda i=i: fresh(i)]  # type: ignore[misc]
        if i % 4 == 3:
            work += [lambda i=i: delete(i), lambda i=i: yank(i)]  # type: ignore[misc]
    random.Random(11).shuffle(work)
    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(job) for job in work]:
            future.result()
    assert len(won) == 1
    page = ProjectPage.from_json_bytes(_get(store, "simple/crowd/index.json"))
    entry = page.find(wheel_name("crowd", "9.0"))
    assert entry is not None
    assert entry.sha256 == hashlib.sha256(_get(store, entry.key)).hexdigest()
    assert_consistent(store)
