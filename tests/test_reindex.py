"""Rebuilding pages from storage (``skypi reindex``), over the folder and over S3 (moto)."""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from pathlib import Path

import pytest
from packaging.utils import NormalizedName, canonicalize_name

from skypi import cli
from skypi.core.constants import MAX_ROOT_DELAY_SECONDS
from skypi.core.pages import ProjectPage, RootEntry, RootListing
from skypi.core.plan import Mark
from skypi.core.render import render_project_html
from skypi.indexer import deferred
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Gone, Indexer, Landed
from skypi.local.startup import reconcile as start_up
from skypi.store.base import ObjectInfo, Store
from skypi.store.local import LocalStore
from tests.dists import sdist_bytes, sdist_name, wheel_bytes, wheel_name
from tests.emulated import s3_store


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "packages")
    return s3_store(request.getfixturevalue("moto_endpoint"))


def _drop(store: Store, project: str, version: str, *, sdist: bool = False) -> str:
    name = sdist_name(project, version) if sdist else wheel_name(project, version)
    key = f"packages/{project}/{name}"
    store.put(key, sdist_bytes(project, version) if sdist else wheel_bytes(project, version))
    return key


def _history(store: Store) -> Indexer:
    """Uploads, drops, a delete, a yank: what an index goes through."""
    indexer = Indexer(store)
    keys = [
        _drop(store, "alpha", "1.0"),
        _drop(store, "alpha", "1.1"),
        _drop(store, "alpha", "1.1", sdist=True),
        _drop(store, "beta", "0.1"),
        _drop(store, "gamma", "2.0"),
    ]
    indexer.apply([Landed(k) for k in keys])
    store.delete(keys[4])
    indexer.apply([Gone(keys[4])])
    indexer.update_files("alpha", Mark("broken", version="1.0"))  # type: ignore[arg-type]
    _drop(store, "delta", "3.0")  # dropped while nobody indexed it
    return indexer


def _check(indexer: Indexer, verify: bool = False) -> list[str]:
    return [str(d) for d in Rebuilder(indexer, verify_hashes=verify).run(check=True).drift]


def _page(store: Store, project: str) -> ProjectPage:
    return ProjectPage.from_json_bytes(store.get(f"simple/{project}/index.json")[1])


def test_check_reports_only_real_drift(any_store: Store) -> None:
    indexer = _history(any_store)
    assert _check(indexer) == [
        f"delta: not listed: {wheel_name('delta', '3.0')}",
        "delta: the root listing disagrees with its page",
    ]
    Rebuilder(indexer).run(check=False)
    assert _check(indexer) == []
    assert _check(indexer, verify=True) == []
    alpha = _page(any_store, "alpha")
    assert alpha.find(wheel_name("alpha", "1.0")).yanked == "broken"  # type: ignore[union-attr]
    assert _page(any_store, "gamma").files == ()


def test_a_project_pending_for_the_root_listing_is_no_drift_within_its_window(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new project recorded for the listing's next rebuild (AWS) is served at once and
    listed within the window: ``--check`` reports it only once that window is long past."""

    class Asked:
        def request(self, delay: int) -> None:
            pass

    indexer = Indexer(any_store, rebuilds=Asked())
    indexer.apply([Landed(_drop(any_store, "waiting", "1.0"))])
    assert _check(indexer) == []
    monkeypatch.setattr(deferred, "OVERDUE_GRACE_SECONDS", -3600 - MAX_ROOT_DELAY_SECONDS)
    assert _check(indexer) == ["waiting: the root listing disagrees with its page"]
    indexer.rebuild_root()
    assert _check(indexer) == []


def test_copies_are_no_drift_and_the_listed_copy_keeps_its_place(any_store: Store) -> None:
    """A byte-identical copy under another key is no drift; a different file of the same
    name is, and the file the page lists stays listed, whatever the keys' order."""
    indexer = Indexer(any_store)
    listed = f"packages/zeta/{wheel_name('zeta', '1.0')}"
    any_store.put(listed, wheel_bytes("zeta", "1.0"))
    indexer.apply([Landed(listed)])
    copy = f"packages/a-mirror/{wheel_name('zeta', '1.0')}"  # sorts before the listed key
    any_store.put(copy, wheel_bytes("zeta", "1.0"))
    assert _check(indexer) == []
    other = f"packages/b-other/{wheel_name('zeta', '1.0')}"
    any_store.put(other, wheel_bytes("zeta", "1.0", payload=b"other bytes"))
    assert _check(indexer) == [
        f"zeta: {other} repeats {wheel_name('zeta', '1.0')}; {listed} is indexed"
    ]
    Rebuilder(indexer).run(check=False)
    assert [f.key for f in _page(any_store, "zeta").files] == [listed]


def test_corrupted_pages_are_repaired(any_store: Store) -> None:
    indexer = _history(any_store)
    Rebuilder(indexer).run(check=False)
    good = {i.key: any_store.get(i.key)[1] for i in any_store.list("simple/")}
    alpha = _page(any_store, "alpha")
    # An entry lost, an HTML page garbled, a twin deleted, a page unreadable, the root wrong,
    # a .metadata file gone, and an entry for a file that is not there.
    assert alpha.files[0].yanked == "broken"
    lost = alpha.files[1:2]  # an entry that storage can give back whole (a yank it could not)
    any_store.put(
        "simple/alpha/index.json",
        alpha.with_files(alpha.files[:1] + alpha.files[2:]).to_json_bytes(),
    )
    any_store.put("simple/beta/index.html", b"<html>garbage</html>")
    any_store.delete("simple/beta/index.v1html")
    any_store.put("simple/delta/index.json", b"{not json")
    root = RootListing.from_json_bytes(any_store.get("simple/index.json")[1])
    any_store.put(
        "simple/index.json",
        root.with_projects({NormalizedName("beta"): RootEntry(None)}).to_json_bytes(),
    )
    any_store.delete(f"packages/beta/{wheel_name('beta', '0.1')}.metadata")
    ghost = alpha.files[0].__class__(
        **{
            **alpha.files[0].__dict__,
            "filename": "alpha-9.0.tar.gz",
            "key": "packages/alpha/alpha-9.0.tar.gz",
        }
    )
    beta = _page(any_store, "beta")
    any_store.put("simple/beta/index.json", beta.with_files((*beta.files, ghost)).to_json_bytes())

    drift = _check(indexer)
    assert any("alpha: not listed" in d for d in drift)
    assert any(
        "simple/beta/index.html does not match" in d or "beta: listed but not stored" in d
        for d in drift
    )
    assert any("delta: the JSON page cannot be read" in d for d in drift)
    assert any("beta: the root listing disagrees" in d for d in drift)
    assert any(".metadata is missing" in d for d in drift)

    Rebuilder(indexer).run(check=False)
    assert _check(indexer) == []
    repaired = {i.key: any_store.get(i.key)[1] for i in any_store.list("simple/")}
    assert repaired.keys() == good.keys()
    assert _page(any_store, "alpha").files == alpha.files  # the yank survived
    assert lost[0] in _page(any_store, "alpha").files
    assert any_store.head(f"packages/beta/{wheel_name('beta', '0.1')}.metadata") is not None
    assert {f.filename for f in _page(any_store, "delta").files} == {wheel_name("delta", "3.0")}


def test_verify_hashes_catches_a_page_that_lies_about_a_hash(any_store: Store) -> None:
    indexer = _history(any_store)
    Rebuilder(indexer).run(check=False)
    beta = _page(any_store, "beta")
    lie = beta.files[0].__class__(**{**beta.files[0].__dict__, "sha256": "0" * 64})
    any_store.put("simple/beta/index.json", beta.with_files((lie,)).to_json_bytes())
    # Same ETag: the entry is trusted without reading the file (only the HTML, rendered from
    # the true page, gives the lie away).
    assert not any("entry differs" in d for d in _check(indexer))
    assert any("entry differs" in d for d in _check(indexer, verify=True))
    Rebuilder(indexer, verify_hashes=True).run(check=False)
    assert _page(any_store, "beta").files[0].sha256 == beta.files[0].sha256


def test_reindex_while_uploads_continue_loses_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "packages")
    indexer = _history(store)
    done = threading.Event()

    def upload() -> None:
        for i in range(30):
            indexer.apply([Landed(_drop(store, "busy", f"1.{i}"))])
        done.set()

    thread = threading.Thread(target=upload)
    thread.start()
    while not done.is_set():
        Rebuilder(indexer, workers=2).run(check=False)
    thread.join()
    assert len(_page(store, "busy").files) == 30
    Rebuilder(indexer).run(check=False)
    assert _check(indexer) == []


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "packages"
    store = LocalStore(folder)
    Indexer(store).apply([Landed(_drop(store, "alpha", "1.0"))])
    assert cli.main(["reindex", str(folder), "--check"]) == 0
    _drop(store, "beta", "1.0")
    assert cli.main(["reindex", str(folder), "--check"]) == 1
    assert "beta: not listed" in capsys.readouterr().out
    assert cli.main(["reindex", str(folder)]) == 0
    assert cli.main(["reindex", str(folder), "--check"]) == 0


def test_every_page_has_its_gzip_variant_and_reindex_restores_them(any_store: Store) -> None:
    """Each page (JSON, both HTML twins, root and projects) is stored beside a gzip variant
    holding exactly its bytes; ``--check`` reports a variant that is missing, stale or
    corrupt (pages written by an older skypi have none), and a rebuild writes them."""
    indexer = _history(any_store)
    Rebuilder(indexer).run(check=False)
    assert _check(indexer) == []
    pages = [i.key for i in any_store.list("simple/") if not i.key.endswith(".gz")]
    assert len(pages) == 3 * 5  # root, alpha, beta, gamma (empty), delta
    for key in pages:
        assert gzip.decompress(any_store.get(key + ".gz")[1]) == any_store.get(key)[1], key
    any_store.delete("simple/alpha/index.json.gz")
    any_store.put("simple/beta/index.v1html.gz", gzip.compress(b"<html>an older page</html>"))
    any_store.put("simple/index.html.gz", b"not gzip at all")
    assert sorted(_check(indexer)) == [
        "(root): simple/index.html.gz does not match simple/index.html",
        "alpha: simple/alpha/index.json.gz does not match simple/alpha/index.json",
        "beta: simple/beta/index.v1html.gz does not match simple/beta/index.v1html",
    ]
    Rebuilder(indexer).run(check=False)
    assert _check(indexer) == []
    assert (
        gzip.decompress(any_store.get("simple/beta/index.v1html.gz")[1])
        == any_store.get("simple/beta/index.v1html")[1]
    )


def test_a_slow_writer_of_followers_ends_on_the_newest_page(tmp_path: Path) -> None:
    """A writer whose page was replaced while it wrote the page's followers (the variant,
    the HTML twins, the page for people) sees that when it looks again, and writes them
    from the newest page: the followers never stay behind their page."""
    store = LocalStore(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "alpha", "1.0"))])
    old = indexer.pages.read(canonicalize_name("alpha"))
    indexer.apply([Landed(_drop(store, "alpha", "2.0"))])
    new = store.get("simple/alpha/index.json")[1]
    assert old.page is not None
    assert old.etag is not None
    followed = indexer.pages.follow(old.page, old.etag)  # the slow writer, late
    assert followed.to_json_bytes() == new
    newest = ProjectPage.from_json_bytes(new)
    assert gzip.decompress(store.get("simple/alpha/index.json.gz")[1]) == new
    for key in ("simple/alpha/index.html", "simple/alpha/index.v1html"):
        assert store.get(key)[1] == render_project_html(newest)
        assert gzip.decompress(store.get(f"{key}.gz")[1]) == render_project_html(newest)
    assert b"alpha-2.0" in store.get("site/project/alpha/index.html")[1]
    assert _check(indexer) == []


def test_serve_start_gives_an_older_folder_its_variants(tmp_path: Path) -> None:
    """``skypi serve`` reconciles at start: a folder indexed by a skypi without compressed
    pages gets every variant, so gzip clients find them at once."""
    store = LocalStore(tmp_path / "packages")
    indexer = _history(store)
    start_up(store, indexer)
    variants = [i.key for i in store.list("simple/") if i.key.endswith(".gz")]
    assert variants
    for key in variants:
        store.delete(key)
    start_up(store, indexer)
    assert sorted(i.key for i in store.list("simple/") if i.key.endswith(".gz")) == sorted(variants)
    assert _check(indexer) == []


def test_a_reindex_reads_each_filename_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key's distribution is parsed once however often a pass asks (the listing, the entry,
    the page): at 12,000 files the repeats were about a tenth of a full reindex."""
    import skypi.indexer.changes as changes

    store = LocalStore(tmp_path / "packages")
    keys = [_drop(store, f"once-{i}", "1.0", sdist=bool(i % 2)) for i in range(6)]
    parsed: list[str] = []
    real = changes.parse_filename

    def counted(filename: str):  # type: ignore[no-untyped-def]
        parsed.append(filename)
        return real(filename)

    monkeypatch.setattr(changes, "parse_filename", counted)
    getattr(changes.project_of_key, "cache_clear", lambda: None)()  # earlier tests asked too
    report = Rebuilder(Indexer(store)).run(check=False)
    assert report.files == len(keys)
    assert sorted(parsed) == sorted(k.rsplit("/", 1)[1] for k in keys)


def test_a_full_reindex_reads_each_file_once_and_no_page_it_wrote(
    any_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page rewritten from the files (the pages lost, the descriptions kept): each
    distribution is read once (its project's name too comes from that read), and a page this
    pass wrote is only looked at (HEAD) as the root listing is swapped, not read again."""
    dists = [
        _drop(any_store, f"proj-{i}", "1.0", sdist=sdist) for i in range(3) for sdist in (0, 1)
    ]
    Rebuilder(Indexer(any_store)).run(check=False)
    for info in list(any_store.list("simple/")):
        any_store.delete(info.key)
    reads: Counter[str] = Counter()
    real = any_store.get

    def counted(key: str) -> tuple[ObjectInfo, bytes]:
        reads[key] += 1
        return real(key)

    monkeypatch.setattr(any_store, "get", counted)
    report = Rebuilder(Indexer(any_store)).run(check=False)
    assert report.files == len(dists)
    assert {key: reads[key] for key in dists} == dict.fromkeys(dists, 1)
    # before the swap and before the write (none yet), never after it
    assert [reads[f"simple/proj-{i}/index.json"] for i in range(3)] == [2, 2, 2]
    root = RootListing.from_json_bytes(any_store.get("simple/index.json")[1])
    assert sorted(root.projects) == ["proj-0", "proj-1", "proj-2"]
