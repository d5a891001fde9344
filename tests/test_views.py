"""Views through the read path, over a real HTTP upstream on loopback: pages made on a miss and
again when time alone changes them, files cached and checked, private names first, the policy's
rules seen from a client's side, and hostile upstreams and paths."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.keys import file_key, view_file_key
from skypi.core.namespaces import Namespace
from skypi.core.osv import OsvData
from skypi.core.pages import format_time
from skypi.core.viewpolicy import Reason
from skypi.core.views import parse_policy
from skypi.indexer.namespaces import NamespaceAdmin
from skypi.indexer.service import Indexer, Landed
from skypi.indexer.views import Served, Views
from skypi.store.local import LocalStore
from skypi.store.namespaces import NamespaceRepository
from tests.conftest import add_token, basic
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.upstream import Clock, StaticUpstream

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
START = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def world(tmp_path: Path, upstream: StaticUpstream) -> Iterator[tuple[TestClient, Views, Clock]]:
    store = LocalStore(tmp_path / "packages")
    clock = Clock(START)
    views = Views(store, clock=clock)
    views.save(parse_policy("safe", {"upstream": upstream.url, "cooldown-days": 7}), new=True)
    with TestClient(create_app(store, Settings(upload_auth=False), views=views)) as client:
        yield client, views, clock


def _upload(client: TestClient, name: str, version: str) -> None:
    data, filename = wheel_bytes(name, version), wheel_name(name, version)
    response = client.post(
        "/legacy/",
        data=upload_form(data, filename, name, version),
        files={"content": (filename, data)},
    )
    assert response.status_code == 200, response.text


def _files(client: TestClient, project: str, view: str = "safe") -> list[str]:
    response = client.get(f"/view/{view}/simple/{project}/", headers=JSON)
    assert response.status_code == 200, response.text
    return [f["filename"] for f in response.json()["files"]]


def test_the_cooldown_holds_young_files_back_until_time_alone_lets_them_in(
    world: Any, upstream: StaticUpstream
) -> None:
    client, _, clock = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    upstream.add_wheel("demo", "2.0", START - timedelta(days=1))
    upstream.add_wheel("demo", "3.0", None)  # untimed: never listed
    assert _files(client, "demo") == [wheel_name("demo", "1.0")]
    page = client.get("/view/safe/simple/demo/", headers=JSON).json()
    blocked = {b["filename"]: b["reason"] for b in page["_view"]["blocked"]}
    assert blocked == {wheel_name("demo", "2.0"): "cooldown", wheel_name("demo", "3.0"): "untimed"}
    assert page["_view"]["next-change"] == "2026-12-07T00:00:00.000000Z"
    asked = len(upstream.requests)
    assert _files(client, "demo") == [wheel_name("demo", "1.0")]  # stored: no upstream request
    assert len(upstream.requests) == asked
    clock.now = START + timedelta(days=6, hours=1)  # past the cooldown of 2.0
    assert _files(client, "demo") == [wheel_name("demo", v) for v in ("1.0", "2.0")]
    assert upstream.requests[asked:] == ["/simple/demo/"]  # revalidated (304), once


def test_a_listed_file_is_fetched_once_checked_and_then_served_from_the_index(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, _ = world
    data = upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    url = client.get("/view/safe/simple/demo/", headers=JSON).json()["files"][0]["url"]
    assert url == f"../../files/demo/{name}"
    for _ in range(2):
        response = client.get(f"/view/safe/files/demo/{name}")
        assert response.status_code == 200
        assert response.content == data
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert upstream.requests.count(f"/files/{name}") == 1
    assert views.store.head(view_file_key("safe", "demo", name)) is not None
    meta = client.get(f"/view/safe/files/demo/{name}.metadata")
    assert meta.status_code == 200
    assert meta.content == upstream.files[f"/files/{name}.metadata"]
    html = client.get("/view/safe/simple/demo/")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert f'href="../../files/demo/{name}#sha256=' in html.text
    zipped = client.get("/view/safe/simple/demo/", headers=JSON | {"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert client.get("/view/safe/files/demo/demo-9.0-py3-none-any.whl").status_code == 404


def test_bytes_that_do_not_match_upstreams_hash_are_refused_and_logged(
    world: Any, upstream: StaticUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    client, views, _ = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30), served=b"PK-not-the-wheel")
    name = wheel_name("demo", "1.0")
    with caplog.at_level(logging.ERROR, "skypi.views"):
        response = client.get(f"/view/safe/files/demo/{name}")
    assert response.status_code == 502
    assert "does not match the SHA-256" in response.text
    assert any("refused" in r.getMessage() for r in caplog.records)
    assert views.store.head(view_file_key("safe", "demo", name)) is None


def test_a_file_upstream_moved_to_another_host_is_never_fetched(
    world: Any, upstream: StaticUpstream
) -> None:
    """Listed while on upstream's host, then moved by upstream to an address the view does not
    fetch from: the view's page drops it and its URL answers 404, with no request made there."""
    client, _, clock = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    assert _files(client, "demo") == [name]
    upstream.pages["demo"]["files"][0]["url"] = f"http://127.0.0.2:9/{name}"
    clock.now = START + timedelta(hours=1)  # past refresh-minutes: upstream asked again
    assert _files(client, "demo") == []
    assert client.get(f"/view/safe/files/demo/{name}").status_code == 404
    assert f"/files/{name}" not in upstream.requests


def test_private_names_win_over_a_hostile_upstream_at_once(
    world: Any, upstream: StaticUpstream
) -> None:
    client, _views, _ = world
    upstream.add_wheel("acme-lib", "99.0", START - timedelta(days=30))  # the hostile one
    upstream.add_wheel("shared", "5.0", START - timedelta(days=30))
    name = wheel_name("shared", "5.0")
    assert _files(client, "shared") == [name]  # from upstream, for now
    assert client.get(f"/view/safe/files/shared/{name}").status_code == 200
    _upload(client, "acme-lib", "1.0")
    _upload(client, "shared", "1.0")  # a private upload takes the name over
    for project in ("acme-lib", "shared"):
        view = client.get(f"/view/safe/simple/{project}/", headers=JSON).json()
        private = client.get(f"/simple/{project}/", headers=JSON).json()
        assert view == private
        assert [f["filename"] for f in view["files"]] == [wheel_name(project, "1.0")]
        link = view["files"][0]["url"]  # ../../packages/...: the private file, under the view
        resolved = urljoin(f"/view/safe/simple/{project}/", link)
        assert resolved.startswith("/view/safe/packages/")
        assert client.get(resolved).status_code == 200
    assert client.get(f"/view/safe/files/shared/{name}").status_code == 404  # cached, gone
    root = client.get("/view/safe/simple/", headers=JSON).json()
    assert {p["name"] for p in root["projects"]} == {"acme-lib", "shared"}
    # the view's stored page of the name, and its place among the served names, are gone
    assert not [k for k in _views.store.list("views/safe/simple/") if "/shared/" in k.key]
    assert _views.served("safe") == []


def test_a_namespace_reserved_takes_its_names_out_of_every_view_at_once(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, _ = world
    upstream.add_wheel("acme-tools", "9.0", START - timedelta(days=30))
    upstream.add_wheel("acmex", "1.0", START - timedelta(days=30))  # not covered by "acme"
    assert _files(client, "acme-tools") == [wheel_name("acme-tools", "9.0")]
    assert _files(client, "acmex") == [wheel_name("acmex", "1.0")]
    NamespaceAdmin(Indexer(views.store)).add("acme", owner="platform")
    kept = {
        k.key.split("/")[3] for k in views.store.list("views/safe/simple/") if k.key.count("/") > 3
    }
    assert kept == {"acmex"}
    assert views.served("safe") == ["acmex"]
    assert client.get("/view/safe/simple/acme-tools/").status_code == 404


def test_a_reserved_namespace_is_never_taken_from_upstream(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, _ = world
    upstream.add_wheel("acme-tools", "1.0", START - timedelta(days=30))
    NamespaceRepository(views.store).update(
        lambda ns: ns.add(Namespace.create("acme", owner="platform"))
    )
    assert client.get("/view/safe/simple/acme-tools/").status_code == 404
    assert (
        client.get(f"/view/safe/files/acme-tools/{wheel_name('acme-tools', '1.0')}").status_code
        == 404
    )
    assert views.explain("safe", "acme-tools").origin.value == "reserved"


def test_deny_list_and_malware_are_blocked_and_say_why(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, _ = world
    old = START - timedelta(days=30)
    for version in ("1.0", "2.0"):
        upstream.add_wheel("demo", version, old)
    upstream.add_wheel("evil", "1.0", old)
    views.save(
        parse_policy("safe", {"upstream": upstream.url, "deny": ["evil", "demo>=2"]}), new=False
    )
    assert client.get("/view/safe/simple/evil/").status_code == 404
    assert _files(client, "demo") == [wheel_name("demo", "1.0")]
    views.import_osv(
        OsvData.from_records(
            [
                {
                    "id": "MAL-2026-7",
                    "summary": "Malicious code in demo (PyPI)",
                    "affected": [
                        {"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["1.0"]}
                    ],
                }
            ]
        )
    )
    page = client.get("/view/safe/simple/demo/", headers=JSON).json()  # OSV changed: made again
    assert page["files"] == []
    reasons = {b["version"]: (b["reason"], b["detail"]) for b in page["_view"]["blocked"]}
    assert reasons["1.0"] == ("malware", "MAL-2026-7: Malicious code in demo (PyPI)")
    assert reasons["2.0"][0] == "deny-list"


def test_upstream_quarantine_withholds_even_cached_files_and_yanks_pass_through(
    world: Any, upstream: StaticUpstream
) -> None:
    client, _views, clock = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30), yanked="broken build")
    name = wheel_name("demo", "1.0")
    page = client.get("/view/safe/simple/demo/", headers=JSON).json()
    assert page["files"][0]["yanked"] == "broken build"
    assert 'data-yanked="broken build"' in client.get("/view/safe/simple/demo/").text
    assert client.get(f"/view/safe/files/demo/{name}").status_code == 200
    upstream.set_status("demo", "quarantined", "malware")
    clock.now += timedelta(minutes=11)  # past refresh-minutes: upstream is asked again
    page = client.get("/view/safe/simple/demo/", headers=JSON).json()
    assert page["files"] == []
    assert page["project-status"] == {"status": "quarantined", "reason": "malware"}
    assert client.get(f"/view/safe/files/demo/{name}").status_code == 404


def test_an_upstream_that_fails_leaves_stored_pages_served(
    world: Any, upstream: StaticUpstream
) -> None:
    client, _views, clock = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    assert _files(client, "demo") == [wheel_name("demo", "1.0")]
    upstream.stop()
    clock.now += timedelta(hours=1)
    assert _files(client, "demo") == [wheel_name("demo", "1.0")]  # the kept page
    never = client.get("/view/safe/simple/other/")
    assert never.status_code == 502  # a gateway that cannot reach upstream
    assert "cannot be used now" in never.text


def test_a_private_index_wants_the_same_read_token_for_its_views(
    tmp_path: Path, upstream: StaticUpstream
) -> None:
    store = LocalStore(tmp_path / "packages")
    views = Views(store)
    views.save(parse_policy("safe", {"upstream": upstream.url}), new=True)
    upstream.add_wheel("demo", "1.0", datetime.now(UTC) - timedelta(days=30))
    client = TestClient(create_app(store, Settings(private=True), views=views))
    assert client.get("/view/safe/simple/demo/").status_code == 401
    assert client.get("/view/safe/simple/").status_code == 401
    assert upstream.requests == []  # refused before upstream is asked
    token = add_token(store, "read")
    assert client.get("/view/safe/simple/demo/", headers=basic(token)).status_code == 200
    limited = add_token(store, "read", projects={"other"})
    assert client.get("/view/safe/simple/demo/", headers=basic(limited)).status_code == 403


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/view/Safe/simple/", 404),
        ("/view/nope/simple/demo/", 404),
        ("/view/safe/simple/%zz/", 400),
        ("/view/safe/files/demo/../../policy.json", 404),
        ("/view/safe/files/demo/%2e%2e/x.whl", 404),
        ("/view/safe/files/other/demo-1.0-py3-none-any.whl", 404),
        ("/view/safe/upstream/demo.json", 404),
        ("/view/safe/simple/namespaces", 404),
        ("/view/safe/simple/-bad-/", 404),
    ],
)
def test_hostile_view_paths_never_reach_other_objects(world: Any, path: str, status: int) -> None:
    from tests.asgi import Request, call

    client, _, _ = world
    response = call(client.app, Request("GET", path))
    assert response.status == status, (path, response.text)


def test_names_are_normalized_and_the_view_root_redirects_like_simple(world: Any) -> None:
    client, _, _ = world
    for path, location in (
        ("/view/safe/simple/Demo_Pkg", "/view/safe/simple/demo-pkg/"),
        ("/view/safe", "/view/safe/simple/"),
        ("/view/safe/simple", "/view/safe/simple/"),
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 301, path
        assert response.headers["location"] == location
    assert client.post("/view/safe/simple/").status_code == 405


def test_the_root_listing_of_a_view_is_gzip_negotiated(
    world: Any, upstream: StaticUpstream
) -> None:
    client, _, _ = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    _files(client, "demo")
    response = client.get("/view/safe/simple/", headers=JSON | {"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert [p["name"] for p in json.loads(response.content)["projects"]] == ["demo"]


def test_names_upstream_lacks_store_nothing_and_are_asked_again_only_after_a_while(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, clock = world
    for _ in range(3):
        assert client.get("/view/safe/simple/no-such-name/").status_code == 404
    assert upstream.requests == ["/simple/no-such-name/"]
    assert [i.key for i in views.store.list("views/safe/") if "no-such-name" in i.key] == []
    clock.now += timedelta(minutes=11)
    upstream.add_wheel("no-such-name", "1.0", START - timedelta(days=30))
    assert _files(client, "no-such-name") == [wheel_name("no-such-name", "1.0")]


def test_osv_data_is_parsed_once_per_change_not_per_read(
    world: Any, upstream: StaticUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, views, _ = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    Views(views.store).import_osv(OsvData.from_records([]))  # another process (the CLI)
    parsed = []
    real = OsvData.from_json_bytes
    monkeypatch.setattr(OsvData, "from_json_bytes", lambda raw: parsed.append(1) or real(raw))
    for _ in range(5):
        assert _files(client, "demo") == [wheel_name("demo", "1.0")]
    assert len(parsed) == 1


def test_the_time_pinned_form_lists_files_up_to_its_date_with_todays_flags(
    world: Any, upstream: StaticUpstream
) -> None:
    client, _, _ = world
    upstream.add_wheel("demo", "1.0", datetime(2026, 10, 1, tzinfo=UTC), yanked="broken")
    upstream.add_wheel("demo", "2.0", datetime(2026, 11, 1, 23, 0, tzinfo=UTC))
    upstream.add_wheel("demo", "3.0", datetime(2026, 11, 2, 0, 0, tzinfo=UTC))
    pinned = client.get("/view/safe@2026-11-01/simple/demo/", headers=JSON).json()
    assert [(f["filename"], f["yanked"]) for f in pinned["files"]] == [
        (wheel_name("demo", "1.0"), "broken"),
        (wheel_name("demo", "2.0"), False),
    ]
    assert _files(client, "demo") == [wheel_name("demo", v) for v in ("1.0", "2.0", "3.0")]
    late = wheel_name("demo", "3.0")
    assert client.get(f"/view/safe@2026-11-01/files/demo/{late}").status_code == 404
    assert client.get(f"/view/safe/files/demo/{late}").status_code == 200
    early = wheel_name("demo", "2.0")
    assert client.get(f"/view/safe@2026-11-01/files/demo/{early}").status_code == 200
    moved = client.get("/view/safe@2026-11-01/simple/Demo", follow_redirects=False)
    assert moved.headers["location"] == "/view/safe@2026-11-01/simple/demo/"
    for bad in ("safe@2026-02-30", "safe@yesterday", "safe@", "safe@2026-11-01@x"):
        assert client.get(f"/view/{bad}/simple/demo/").status_code == 404, bad
    _upload(client, "demo", "0.1")  # a private name wins in the pinned form too
    assert _files(client, "demo", "safe@2026-11-01") == [wheel_name("demo", "0.1")]


def test_any_number_of_pinned_dates_stores_nothing_more(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, _ = world
    upstream.add_wheel("demo", "1.0", datetime(2026, 10, 1, tzinfo=UTC))
    assert _files(client, "demo") == [wheel_name("demo", "1.0")]
    before = sorted(i.key for i in views.store.list("views/"))
    for day in range(1, 29):
        assert _files(client, "demo", f"safe@2026-09-{day:02d}") == []
        html = client.get(f"/view/safe@2026-11-{day:02d}/simple/demo/")
        assert f">{wheel_name('demo', '1.0')}</a>" in html.text
    zipped = client.get("/view/safe@2026-11-01/simple/demo/", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    again = client.get(
        "/view/safe@2026-11-01/simple/demo/", headers={"If-None-Match": zipped.headers["etag"]}
    )
    assert again.status_code in {200, 304}
    assert sorted(i.key for i in views.store.list("views/")) == before
    assert upstream.requests.count("/simple/demo/") == 1


def test_a_name_published_while_a_view_makes_its_page_is_taken_back_out(
    world: Any, upstream: StaticUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The indexer's look at the views comes before the view stores its page: the view looks
    again after storing, and takes its page back out."""
    _, views, _ = world
    upstream.add_wheel("racing", "9.0", START - timedelta(days=30))
    fetch = views.upstream.page
    key = file_key("racing", wheel_name("racing", "1.0"))

    def published_meanwhile(*args: Any, **kwargs: Any) -> Any:
        views.store.put(key, wheel_bytes("racing", "1.0"))
        assert Indexer(views.store).apply([Landed(key)]).added  # no view page to delete yet
        return fetch(*args, **kwargs)

    monkeypatch.setattr(views.upstream, "page", published_meanwhile)
    assert views.project("safe", "racing") is Served.PRIVATE
    assert not list(views.store.list("views/safe/simple/racing/"))
    assert views.served("safe") == []


def test_a_namespace_reserved_while_a_view_makes_its_page_is_taken_back_out(
    world: Any, upstream: StaticUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The namespace's look at the views comes before the view stores a page of a name it
    covers: the view's look after storing checks the reservations too, and takes it out."""
    _, views, _ = world
    upstream.add_wheel("acme-racing", "9.0", START - timedelta(days=30))
    fetch = views.upstream.page

    def reserved_meanwhile(*args: Any, **kwargs: Any) -> Any:
        NamespaceAdmin(Indexer(views.store)).add("acme", owner="platform")  # no page to take yet
        return fetch(*args, **kwargs)

    monkeypatch.setattr(views.upstream, "page", reserved_meanwhile)
    assert views.project("safe", "acme-racing") is Served.PRIVATE
    assert not list(views.store.list("views/safe/simple/acme-racing/"))
    assert views.served("safe") == []


MAL_DEMO = {
    "id": "MAL-2026-11",
    "summary": "Malicious code in demo (PyPI)",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["1.0"]}],
}


def test_a_cached_file_malware_is_found_in_later_is_deleted_and_never_fetched_again(
    world: Any, upstream: StaticUpstream
) -> None:
    """Cached, then named by an OSV MAL- record: the OSV import makes the view's stored pages
    again at once, which deletes the cached copy (and its .metadata); its URL (a lock file's)
    answers 404 saying why, and upstream is not asked for it again. A time-pinned form's URL
    too: the flag holds for every form."""
    client, views, _ = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    page = client.get("/view/safe/simple/demo/", headers=JSON).json()
    link = urljoin("/view/safe/simple/demo/", page["files"][0]["url"]).split("#")[0]
    assert client.get(link).status_code == 200
    assert client.get(link + ".metadata").status_code == 200
    cached = view_file_key("safe", "demo", name)
    assert views.store.head(cached) is not None
    views.import_osv(OsvData.from_records([MAL_DEMO]))
    assert views.follow_change(None) == 1  # what `skypi view osv` does after the import
    assert not list(views.store.list("views/safe/files/"))
    asked = len(upstream.requests)
    for url in (link, link + ".metadata", f"/view/safe@2026-11-20/files/demo/{name}"):
        gone = client.get(url)
        assert gone.status_code == 404, url
        assert f"does not serve {name} (malware: MAL-2026-11" in gone.text
    assert not [r for r in upstream.requests[asked:] if r.startswith("/files/")]
    assert views.store.head(cached) is None


def test_a_policy_change_deletes_what_no_form_lists_and_keeps_what_time_holds_back(
    world: Any, upstream: StaticUpstream
) -> None:
    """A deny-list entry added deletes the cached copy at once; a longer cooldown (time alone
    lifts it, and a pinned form of an earlier day lists the file) keeps it."""
    client, views, _ = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30))
    upstream.add_wheel("demo", "2.0", START - timedelta(days=20))
    for version in ("1.0", "2.0"):
        assert client.get(f"/view/safe/files/demo/{wheel_name('demo', version)}").status_code == 200
    longer = {"upstream": upstream.url, "cooldown-days": 25, "deny": ["demo<2"]}
    views.save(parse_policy("safe", longer), new=False)
    assert views.follow_change("safe") == 1
    assert [i.key for i in views.store.list("views/safe/files/")] == [
        view_file_key("safe", "demo", wheel_name("demo", "2.0"))
    ]
    assert _files(client, "demo") == []  # 2.0 is in the cooldown now, but stays cached


def test_each_answer_of_a_view_gives_its_own_length(world: Any, upstream: StaticUpstream) -> None:
    """A 404, then a 502 and a 404 with longer messages: each says the length of its own body
    (the first answer's length once stayed with every later answer of the process, and
    clients read a cut-off message or a broken connection)."""
    from tests.asgi import Request, call

    client, _, _ = world
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30), served=b"not the wheel")
    assert _files(client, "demo") == [wheel_name("demo", "1.0")]
    for path in (
        "/view/safe/files/demo/demo-9.0-py3-none-any.whl",  # 404 Not Found
        f"/view/safe/files/demo/{wheel_name('demo', '1.0')}",  # 502: its hash does not match
        "/view/safe/simple/no-such-name/",  # 404 with upstream's reason
    ):
        response = call(client.app, Request("GET", path))
        assert response.status in {404, 502}, (path, response.status)
        assert int(response.headers["content-length"]) == len(response.body), path


def test_a_file_whose_bytes_lie_is_refused_then_left_out_until_upstream_changes_its_page(
    world: Any, upstream: StaticUpstream
) -> None:
    """Upstream serves other bytes than its page's SHA-256: the download is refused (502),
    the view's page leaves the file out from then on (a resolver takes 0.9 instead of failing
    on 1.0), ``explain`` says why, and upstream is not asked for it again; once upstream's
    page changes, its files are checked afresh."""
    client, views, clock = world
    upstream.add_wheel("demo", "0.9", START - timedelta(days=30))
    upstream.add_wheel("demo", "1.0", START - timedelta(days=30), served=b"not the wheel")
    lying = wheel_name("demo", "1.0")
    assert set(_files(client, "demo")) == {wheel_name("demo", "0.9"), lying}
    assert client.get(f"/view/safe/files/demo/{lying}").status_code == 502
    assert _files(client, "demo") == [wheel_name("demo", "0.9")]
    verdict = next(v for v in views.explain("safe", "demo").verdicts if v.filename == lying)
    assert verdict.reason is Reason.MISMATCH, verdict
    assert "as its page says" in verdict.detail, verdict
    asked = len(upstream.requests)
    again = client.get(f"/view/safe/files/demo/{lying}")
    assert again.status_code == 404, again.text
    assert "mismatch: upstream served bytes whose SHA-256 is" in again.text
    assert not [r for r in upstream.requests[asked:] if r.startswith("/files/")]
    upstream.files[f"/files/{lying}"] = wheel_bytes("demo", "1.0")  # mended,
    upstream.add_wheel("demo", "1.1", START - timedelta(days=30))  # and its page changes
    clock.now += timedelta(minutes=11)  # refresh-minutes: the kept page is read again
    assert wheel_name("demo", "1.0") in _files(client, "demo")
    assert client.get(f"/view/safe/files/demo/{lying}").status_code == 200


class _Anchors(HTMLParser):
    """Every anchor's ``href`` of a page: what a PEP 503 client reads as files."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href") or "")


def _anchors(html: str) -> list[str]:
    parser = _Anchors()
    parser.feed(html)
    return parser.hrefs


def test_a_views_html_page_says_what_it_held_back_and_why_in_text_only(
    world: Any, upstream: StaticUpstream
) -> None:
    client, views, clock = world
    old = START - timedelta(days=30)
    for version in ("0.6", "0.8", "0.9", "1.0"):
        upstream.add_wheel("demo", version, old)
    upstream.add_wheel("demo", "0.7", None)  # untimed
    young = START - timedelta(days=1)
    upstream.add_wheel("demo", "2.0", young)
    hostile = 'demo-0.1"><script>window.x=1</script>.tar.gz'  # not a distribution's name
    upstream.pages["demo"]["files"].append(
        {"filename": hostile, "url": "../../files/x", "hashes": {"sha256": "ab" * 32}}
    )
    policy = {"upstream": upstream.url, "cooldown-days": 7, "deny": ["demo==0.8"]}
    views.save(parse_policy("safe", policy | {"block-severity": "high"}), new=False)
    views.import_osv(
        OsvData.from_records(
            [
                {
                    "id": "MAL-2026-8",
                    "summary": "<img src=x onerror=alert(1)> steals keys",
                    "affected": [
                        {"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["0.9"]}
                    ],
                },
                {
                    "id": "GHSA-aaaa-bbbb-cccc",
                    "summary": "RCE",
                    "database_specific": {"severity": "HIGH"},
                    "affected": [
                        {"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["0.6"]}
                    ],
                },
            ]
        )
    )
    html = client.get("/view/safe/simple/demo/").text
    assert _anchors(html) == [f"../../files/demo/{wheel_name('demo', '1.0')}#sha256="
                              + _sha(client, "demo", "1.0")]  # fmt: skip
    held = html.split("<h2>Held back by this view</h2>", 1)[1]
    until = format_time(young + timedelta(days=7))
    for text in (
        f"<td>{wheel_name('demo', '2.0')}</td><td>2.0</td><td>cooldown until {until}</td>",
        f"<td>{wheel_name('demo', '0.7')}</td><td>0.7</td><td>untimed</td>",
        "<td>deny-list</td><td>denied by &#x27;demo==0.8&#x27;</td>",
        "<td>malware</td><td>MAL-2026-8: &lt;img src=x onerror=alert(1)&gt; steals keys</td>",
        "<td>severity</td><td>GHSA-aaaa-bbbb-cccc (high, database_specific: HIGH;",
        "<td>demo-0.1&quot;&gt;&lt;script&gt;window.x=1&lt;/script&gt;.tar.gz</td>",
    ):
        assert text in held, text
    assert "<script" not in html
    assert "<img" not in html
    upstream.set_status("demo", "quarantined", "<b>malware</b>")
    clock.now += timedelta(minutes=11)  # upstream asked again: every file held back
    html = client.get("/view/safe/simple/demo/").text
    assert _anchors(html) == []
    assert "<td>status</td><td>upstream quarantined it: &lt;b&gt;malware&lt;/b&gt;</td>" in html


def _sha(client: TestClient, project: str, version: str) -> str:
    files = client.get(f"/view/safe/simple/{project}/", headers=JSON).json()["files"]
    return next(
        f["hashes"]["sha256"] for f in files if f["filename"] == wheel_name(project, version)
    )
