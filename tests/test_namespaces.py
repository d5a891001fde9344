"""Namespaces (PEP 752) in storage and in the index, on both stores (a folder and S3 on moto):
the records and the endpoint documents, a drop-in that would start a project in a namespace
(set aside, and reported by ``reindex --check``), pages that say which namespaces cover them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from skypi.core.errors import Conflict, DoesNotExist
from skypi.core.http import content_type_for_key
from skypi.core.keys import NAMESPACE_RECORDS_KEY, namespace_key, page_json_key, project_site_key
from skypi.core.pages import ProjectPage
from skypi.indexer.namespaces import NamespaceAdmin
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer, Landed
from skypi.store.base import NotFound, Store
from skypi.store.local import LocalStore
from skypi.store.namespaces import NamespaceRepository
from tests.dists import wheel_bytes, wheel_name
from tests.test_store_conformance import ADAPTERS

PLATFORM = "token:0123456789ab"


@pytest.fixture(params=sorted(ADAPTERS))
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    return ADAPTERS[request.param](request, tmp_path)


def _drop(store: Store, name: str, version: str = "1.0") -> str:
    key = f"packages/{name}/{wheel_name(name, version)}"
    store.put(key, wheel_bytes(name, version))
    return key


def _page(indexer: Indexer, project: str) -> ProjectPage | None:
    return indexer.pages.read(project).page  # type: ignore[arg-type]


def _served(store: Store, key: str) -> object:
    return json.loads(store.get(key)[1])


def test_the_records_and_documents_on_both_stores(any_store: Store) -> None:
    admin = NamespaceAdmin(Indexer(any_store))
    admin.add("Acme", owner="platform", grants=[PLATFORM])
    admin.add("acme.cloud", owner="platform")
    assert _served(any_store, namespace_key(None)) == [{"name": "acme"}, {"name": "acme-cloud"}]
    assert _served(any_store, namespace_key("acme")) == {
        "name": "acme",
        "parent": None,
        "children": ["acme-cloud"],
        "owner": "platform",
    }
    assert content_type_for_key(namespace_key("acme")) == "application/vnd.pypi.simple.v1+json"
    assert admin.grant("acme-cloud", "user:alice").grants == {"user:alice"}
    with pytest.raises(Conflict, match="overlaps 'acme'"):
        admin.add("acme-data", owner="data")
    admin.remove("acme-cloud")
    with pytest.raises(NotFound):
        any_store.get(namespace_key("acme-cloud"))
    assert _served(any_store, namespace_key(None)) == [{"name": "acme"}]
    assert [n.name for n in NamespaceRepository(any_store).all()] == ["acme"]
    with pytest.raises(DoesNotExist):
        admin.remove("acme-cloud")


def test_a_change_made_meanwhile_is_kept(any_store: Store) -> None:
    """Compare-and-swap: a change computed from records someone changed since is made again."""
    repo = NamespaceRepository(any_store)
    admin = NamespaceAdmin(Indexer(any_store))
    admin.add("acme", owner="platform")
    calls = []

    def change(now):  # type: ignore[no-untyped-def]
        calls.append(now)
        if len(calls) == 1:  # another admin adds one between our read and our write
            NamespaceAdmin(Indexer(any_store)).add("other", owner="x")
        return now.grant("acme", PLATFORM)

    repo.update(change)
    assert len(calls) == 2
    assert {n.name for n in repo.all()} == {"acme", "other"}
    assert repo.all().get("acme").grants == {PLATFORM}


def test_a_drop_in_cannot_start_a_project_in_a_namespace(any_store: Store) -> None:
    indexer = Indexer(any_store)
    NamespaceAdmin(indexer).add("acme", owner="platform")
    key = _drop(any_store, "acme-tools")
    outcome = indexer.apply([Landed(key)])
    assert outcome.added == []
    [(refused, message)] = outcome.refused
    assert refused == key
    assert "'acme-tools' is in the namespace 'acme', reserved for platform" in message
    assert "cannot start a project there" in message
    assert _page(indexer, "acme-tools") is None
    assert any_store.head(key + ".metadata") is None  # nothing left beside it
    report = Rebuilder(indexer).run(check=True)
    assert report.set_aside == [(key, message)]
    assert not [d for d in report.drift if d.project == "acme-tools"]  # no page should list it
    Rebuilder(indexer).run(check=False)  # a rebuild sets it aside too
    assert _page(indexer, "acme-tools") is None


def test_a_drop_in_elsewhere_or_into_a_listed_project_is_indexed(any_store: Store) -> None:
    indexer = Indexer(any_store)
    old = indexer.apply([Landed(_drop(any_store, "acme-legacy"))])
    assert old.added
    NamespaceAdmin(indexer).add("acme", owner="platform")
    legacy = _page(indexer, "acme-legacy")
    assert legacy is not None
    assert legacy.namespaces == (("acme", False, "platform"),)
    assert indexer.apply([Landed(_drop(any_store, "acme-legacy", "2.0"))]).added
    assert indexer.apply([Landed(_drop(any_store, "acmetools"))]).added
    page = _page(indexer, "acmetools")
    assert page is not None
    assert page.namespaces is None
    doc = json.loads(any_store.get(page_json_key("acmetools"))[1])
    assert doc["namespaces"] is None
    assert doc["meta"]["api-version"] == "1.5"


def test_an_upload_starts_an_owned_project_and_the_key_follows_the_namespace(
    any_store: Store,
) -> None:
    """The API checked the uploader's grant; the indexer writes what the page says."""
    indexer = Indexer(any_store)
    admin = NamespaceAdmin(indexer)
    admin.add("acme", owner="platform", grants=[PLATFORM])
    admin.add("acme-cloud", owner="platform")
    key = _drop(any_store, "acme-cloud-storage")
    assert indexer.apply([Landed(key, upload=True)]).added
    doc = json.loads(any_store.get(page_json_key("acme-cloud-storage"))[1])
    assert doc["namespaces"] == [
        {"name": "acme", "owned": True, "_owner": "platform"},
        {"name": "acme-cloud", "owned": True, "_owner": "platform"},
    ]
    admin.remove("acme-cloud")
    page = _page(indexer, "acme-cloud-storage")
    assert page is not None
    assert page.namespaces == (("acme", True, "platform"),)
    admin.remove("acme")
    doc = json.loads(any_store.get(page_json_key("acme-cloud-storage"))[1])
    assert doc["namespaces"] is None  # PEP 752: back to null when the grant goes


def test_reindex_puts_a_page_that_disagrees_with_the_namespaces_right(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "acme-x"))])
    NamespaceAdmin(indexer).add("acme", owner="platform")
    store.delete(NAMESPACE_RECORDS_KEY)  # the records replaced (a restore from a backup)
    report = Rebuilder(indexer).run(check=True)
    assert [d.problem for d in report.drift] == ["the page says namespaces acme (not owned)"]
    Rebuilder(indexer).run(check=False)
    page = _page(indexer, "acme-x")
    assert page is not None
    assert page.namespaces is None
    assert Rebuilder(indexer).run(check=True).drift == []


def test_damaged_records_are_a_fault_never_no_namespaces(tmp_path: Path) -> None:
    """Records that cannot be read must not open every namespace to drop-ins."""
    store = LocalStore(tmp_path / "packages")
    indexer = Indexer(store)
    store.put(NAMESPACE_RECORDS_KEY, b'{"namespaces": [{"name": "-bad"}]}')
    key = _drop(store, "acme-tools")
    outcome = indexer.apply([Landed(key)], isolate=True)
    assert outcome.added == []
    assert "acme-tools" in outcome.failed


def test_the_page_for_people_shows_the_namespace_and_its_owner(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "packages")
    indexer = Indexer(store)
    indexer.apply([Landed(_drop(store, "acme-old"))])
    admin = NamespaceAdmin(indexer)
    admin.add("acme", owner="platform <team>")  # shown escaped
    assert indexer.apply([Landed(_drop(store, "acme-new"), upload=True)]).added
    new = store.get(project_site_key("acme-new"))[1].decode()
    assert "In the namespace acme, owned by platform &lt;team&gt;.</p>" in new
    old = store.get(project_site_key("acme-old"))[1].decode()  # rewritten when acme was added
    assert "owned by platform &lt;team&gt; (this project predates it).</p>" in old
    admin.remove("acme")
    assert "namespace" not in store.get(project_site_key("acme-old"))[1].decode()
