"""A miss: the page for people for a browser, the plain 404 for pip, uv and file downloads; and
the index's address put into the pages' setup lines by a server that knows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.edge import origin_uri
from skypi.core.keys import LANDING_KEY, project_site_key
from skypi.core.site import PLACEHOLDERS
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic
from tests.dists import upload_form, wheel_bytes, wheel_name

CHROMIUM = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "Sec-Fetch-Dest": "document",
}
# What pip 24 and uv send for a project page (their Accept), and for a file.
PIP = {
    "Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; "
    "q=0.1, text/html; q=0.01",
    "User-Agent": "pip/24.0",
}
UV = {
    "Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;"
    "q=0.2, text/html;q=0.01"
}
URL = "http://127.0.0.1:8080"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "index")
    key = f"packages/rocket-science/{wheel_name('rocket-science', '1.0')}"
    store.put(key, wheel_bytes("rocket-science", "1.0"))
    Indexer(store).apply([Landed(key)])
    return store


def _client(store: LocalStore, **settings: object) -> TestClient:
    return TestClient(create_app(store, Settings(**settings)), follow_redirects=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path",
    ["/project/rocket-sience/", "/simple/rocket-sience/", "/rocket-sience", "/project/"],
)
def test_a_browser_gets_a_page_that_says_what_is_missing_and_what_is_near(
    store: LocalStore, path: str
) -> None:
    answer = _client(store).get(path, headers=CHROMIUM)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    html = answer.text
    assert f"<code>{path}</code>" in html
    near = 'href="/project/rocket-science/"' in html  # the name closest to the one asked
    assert near is ("rocket-sience" in path)
    assert '<form id="search" action="/project/" method="get"' in html
    assert '<a href="/">' in html
    assert '<a href="/simple/">' in html


@pytest.mark.parametrize("headers", [PIP, UV, {}, {"Accept": "text/html"}, {"Accept": "*/*"}])
@pytest.mark.parametrize(
    "path",
    [
        "/simple/rocket-sience/",
        "/packages/rocket-science/rocket_science-9.9-py3-none-any.whl",
        "/nowhere",
    ],
)
def test_clients_and_file_downloads_keep_the_plain_404(
    store: LocalStore, path: str, headers: dict[str, str]
) -> None:
    answer = _client(store).get(path, headers=headers)
    assert (answer.status_code, answer.text) == (404, "Not Found\n")
    assert answer.headers["content-type"] == "text/plain"


def test_a_file_a_browser_asks_for_stays_a_plain_404(store: LocalStore) -> None:
    path = "/packages/rocket-science/rocket_science-9.9-py3-none-any.whl"
    answer = _client(store).get(path, headers=CHROMIUM)
    assert (answer.status_code, answer.text) == (404, "Not Found\n")


def test_the_page_escapes_what_was_asked(store: LocalStore) -> None:
    answer = _client(store).get("/project/%3Cscript%3Ealert(1)%3C/script%3E/", headers=CHROMIUM)
    assert answer.status_code == 404
    assert "<script>alert(1)" not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text


def test_private_names_are_shown_only_to_a_reader(store: LocalStore) -> None:
    client = _client(store, private=True)
    # no token: nothing about the index, not even near names (a route no token opens)
    stranger = client.get("/rocket-sience", headers=CHROMIUM)
    assert stranger.status_code == 404
    assert "rocket-science" not in stranger.text
    assert client.get("/project/rocket-sience/", headers=CHROMIUM).status_code == 401
    reader = basic(add_token(store, "read"))
    answer = client.get("/project/rocket-sience/", headers={**CHROMIUM, **reader})
    assert answer.status_code == 404
    assert 'href="/project/rocket-science/"' in answer.text


def test_cloudfront_failover_request_gets_the_page(store: LocalStore) -> None:
    """CloudFront asks the API for a page for people the bucket lacks (the origin group of
    /project/*) with the bucket key's path, and none of the browser's headers."""
    path = origin_uri(project_site_key("rocket-sience"))
    for private in (False, True):
        answer = _client(store, private=private).get(path)
        assert answer.status_code == 404
        assert "<code>/project/rocket-sience/</code>" in answer.text
        # names only where anyone may read them (the failover carries no credentials)
        assert ('href="/project/rocket-science/"' in answer.text) is not private
    # any other path under /site/ is no page for people
    assert _client(store).get("/site/index.html").text == "Not Found\n"


def test_the_search_form_goes_to_the_project_without_javascript(store: LocalStore) -> None:
    client = _client(store)
    answer = client.get("/project/", params={"q": " Rocket_Science "})
    assert (answer.status_code, answer.headers["location"]) == (302, "/project/rocket-science/")
    assert client.get(answer.headers["location"]).status_code == 200
    assert client.get("/project/", params={"q": "not a name"}, headers=CHROMIUM).status_code == 404


def test_a_server_that_knows_its_url_puts_it_into_the_setup_lines(store: LocalStore) -> None:
    stored = store.get(LANDING_KEY)[1]
    assert PLACEHOLDERS.u.encode() in stored  # written without it: the port may change
    client = _client(store, index_url=URL)
    for path in ("/", "/project/rocket-science/"):
        html = client.get(path).text
        assert f"pip install --index-url {URL}/simple/ " in html
        assert all(mark not in html for mark in ('class="u"', "INDEX_HOST", PLACEHOLDERS.note))
    # its own ETag: a browser's copy with placeholders is not taken for this one
    plain = _client(store).get("/")
    filled = client.get("/")
    assert plain.headers["etag"] != filled.headers["etag"]
    again = client.get("/", headers={"If-None-Match": filled.headers["etag"]})
    assert again.status_code == 304
    assert store.get(LANDING_KEY)[1] == stored  # served filled, stored as it was


def test_a_stable_address_is_written_into_the_pages(tmp_path: Path) -> None:
    """The deployed stack's address does not change: its functions write it into the pages."""
    store = LocalStore(tmp_path / "index")
    client = _client(store, index_url="https://pypi.example.com", address_in_pages=True)
    token = add_token(store, "upload")
    filename, wheel = wheel_name("demo", "1.0"), wheel_bytes("demo", "1.0")
    data = upload_form(wheel, filename, "demo", "1.0")
    files = {"content": (filename, wheel)}
    assert client.post("/legacy/", data=data, files=files, headers=basic(token)).status_code == 200
    page = store.get(project_site_key("demo"))[1].decode()
    assert "pip install --index-url https://pypi.example.com/simple/ demo" in page
    assert PLACEHOLDERS.u not in store.get(LANDING_KEY)[1].decode()


def test_head_of_a_miss_has_no_body(store: LocalStore) -> None:
    answer = _client(store).head("/project/nope/", headers=CHROMIUM)
    assert answer.status_code == 404
    assert answer.content == b""
    assert int(answer.headers["content-length"]) > 0


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ("https://pypi.example.com/", "https://pypi.example.com"),
        ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
        ("javascript:alert(1)", None),
        ("pypi.example.com", None),
        ("https://pypi.example.com/?x=1", None),
    ],
)
def test_serve_takes_an_index_url_and_refuses_anything_else(
    given: str, taken: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    from skypi.cli import build_parser
    from skypi.local.serve import page_address

    if taken is None:
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--url", given, "./packages"])
        assert "not an index URL" in capsys.readouterr().err
        return
    every = "0.0.0.0"  # noqa: S104 - parsed, not bound
    args = build_parser().parse_args(["serve", "--url", given, "-i", every, "./packages"])
    assert page_address(args.url, "http", args.host, args.port) == taken
