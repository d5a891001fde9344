"""The pages for people in a real browser: Debian's Chromium, driven by Playwright, against a
real ``skypi serve``. Screenshots are left in ``.artifacts/screenshots/`` (gitignored)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import basic
from tests.dists import metadata_text, wheel_bytes, wheel_name
from tests.e2e.conftest import Server, run_cli, start_server
from tests.upstream import StaticUpstream

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What Chromium needs on a machine without a display or an outside network.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
DESCRIPTION = """# Rocket Science

Launch things **safely**.

<script>window.pwned = 'script'</script>
<img src="x" onerror="window.pwned = 'onerror'">
<a href="javascript:window.pwned = 'raw link'">a raw link</a>

[a markdown link](javascript:window.pwned='markdown')

```python
import rocket_science
rocket_science.launch()
```
"""


# What PyPI's sidebar shows, as a release's metadata says it (one link is hostile).
SIDEBAR = """License-Expression: MIT
Author-email: Ada Lovelace <ada@example.com>
Maintainer: Rocket Team
Project-URL: Source, https://example.com/rocket-science
Project-URL: Evil, javascript:window.pwned='sidebar'
Classifier: Programming Language :: Python :: 3
Classifier: Topic :: Scientific/Engineering
Keywords: rockets,space
Requires-Python: >=3.9
"""


def _metadata(name: str, version: str, summary: str, description: str) -> str:
    head = metadata_text(name, version, summary=summary).rstrip("\n")
    return f"{head}\n{SIDEBAR}Description-Content-Type: text/markdown\n\n{description}"


@pytest.fixture
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Server]:
    folder = tmp_path / "packages"
    (folder / "rocket-science").mkdir(parents=True)
    for version, summary in (("1.0", "Rockets, early"), ("1.1", "Rockets, broken"), ("2.0", "")):
        metadata = _metadata(
            "Rocket_Science", version, summary or "Rockets for everyone", DESCRIPTION
        )
        (folder / "rocket-science" / wheel_name("rocket_science", version)).write_bytes(
            wheel_bytes("Rocket_Science", version, metadata=metadata)
        )
    (folder / wheel_name("other-thing", "0.1")).write_bytes(wheel_bytes("other-thing", "0.1"))
    token = run_cli("token", "create", str(folder), "--scope", "admin").stdout.strip()
    server = start_server(folder, tmp_path / "server.log", token=token)
    response = httpx.post(
        f"{server.url}/api/projects/rocket-science/yank",
        json={"version": "1.1", "reason": "the 1.1 engines explode"},
        headers=basic(token),
    )
    assert response.status_code == 200, response.text
    yield server
    server.stop()


def test_a_person_finds_and_reads_a_project(browser: object, site: Server) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{site.url}/")
    index = f"{site.url}/simple/"
    assert index in page.inner_text("header")  # this server's own address
    setup = page.inner_text("body")
    assert f"pip install --index-url {index} PACKAGE" in setup
    assert f'url = "{index}"' in setup
    assert not re.search(r"(?<![A-Z_])INDEX_(URL|HOST)", setup)  # the script filled them in
    assert f"http://__token__:TOKEN@127.0.0.1:{site.port}/simple/" in setup
    assert "2 projects" in setup
    page.fill("#q", "ocket")  # part of a name
    page.wait_for_selector("#hits a")
    assert page.inner_text("#hits").startswith("Rocket_Science")
    page.screenshot(path=str(SHOTS / "landing.png"), full_page=False)
    page.fill("#q", "everyone")  # a word of a summary
    page.wait_for_selector("#hits a")
    # the listing names the project as it is displayed; the script links its normalized name
    assert page.get_attribute("#hits a", "href") == f"{site.url}/project/rocket-science/"
    page.click("#hits a")

    page.wait_for_url(f"{site.url}/project/rocket-science/")
    text = page.inner_text("body")
    assert page.inner_text("h1") == "Rocket_Science 2.0"
    assert "Rockets for everyone" in text
    assert text.index("2.0") < text.index("1.1") < text.index("1.0")  # newest first
    assert "Yanked: the 1.1 engines explode" in text
    assert page.inner_text(".description h1") == "Rocket Science"
    assert "rocket_science.launch()" in page.inner_text(".description pre")
    assert f"pip install --index-url {index} rocket-science" in text
    # PyPI's sidebar: links (http(s) only), license, people, Requires-Python, classifiers.
    aside = page.inner_text("aside.meta")
    for shown in ("Source", "MIT", "Ada Lovelace", "Rocket Team", ">=3.9", "rockets, space"):
        assert shown in aside, shown
    assert "Topic :: Scientific/Engineering" in aside
    assert "Evil" not in aside
    links = [a.get_attribute("href") for a in page.query_selector_all("aside.meta a")]
    assert links == ["https://example.com/rocket-science"]
    # The versions line marks the yanked release; each file shows when it was uploaded.
    assert page.inner_text(".versions") == "2.0, 1.1 yanked, 1.0"
    assert "Uploaded" in page.inner_text("#v2\\.0 table")
    # Every setup line has a copy button that copies exactly the line.
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page.bring_to_front()  # the clipboard takes text only from a focused page
    page.click("pre .copy")
    # the button says so once the clipboard has taken the text (a promise: wait for it)
    from playwright.sync_api import expect  # waits without eval, which the page's CSP forbids

    expect(page.locator("pre .copy").first).to_have_text("Copied", timeout=10_000)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.splitlines()[0] == f"pip install --index-url {index} rocket-science"
    # The upload's script, handlers and javascript: links are inert.
    for link in page.query_selector_all(".description a"):
        assert not (link.get_attribute("href") or "").lower().startswith("javascript:")
        link.click()
    assert page.query_selector_all(".description script") == []
    assert page.evaluate("window.pwned") is None
    assert dialogs == []
    page.screenshot(path=str(SHOTS / "project.png"), full_page=False)

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)  # type: ignore[attr-defined]
    small = phone.new_page()
    small.goto(f"{site.url}/project/rocket-science/")
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone: tables scroll inside themselves
    # ... and a file's whole row fits: the hash wraps instead of being cut after "Size".
    right = small.evaluate(
        "Math.max(...[...document.querySelectorAll('.hash')]"
        ".map(e => e.getBoundingClientRect().right))"
    )
    assert right <= 390
    small.screenshot(path=str(SHOTS / "project-phone.png"), full_page=False)


def test_without_javascript_the_pages_still_read(browser: object, site: Server) -> None:
    context = browser.new_context(java_script_enabled=False)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{site.url}/")
    text = page.inner_text("body")
    # the server knows its address: the setup lines are whole without the script
    assert f"pip install --index-url {site.url}/simple/ PACKAGE" in text
    assert f"http://__token__:TOKEN@127.0.0.1:{site.port}/simple/" in text
    assert "machine 127.0.0.1\nlogin __token__" in text
    assert not re.search(r"(?<![A-Z_])INDEX_(URL|HOST)", text)
    assert "stands for this page's address" not in text
    # the search box is a form: without the script it goes to the project of the name typed
    page.fill("#q", "Rocket.Science")
    page.click("#search button")
    page.wait_for_url(f"{site.url}/project/rocket-science/")
    body = page.inner_text("body")
    assert "Yanked: the 1.1 engines explode" in body
    assert f"pip install --index-url {site.url}/simple/ rocket-science" in body
    # /simple/ is the machines' page, whatever a browser asks.
    simple = httpx.get(f"{site.url}/simple/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert "<h1>Simple index</h1>" in simple.text


def test_a_missing_page_helps_a_person_on(browser: object, site: Server) -> None:
    """A mistyped address gets a page that says what is missing, offers the names near it
    and the search box, and leads back to the index; pip's and uv's misses stay plain."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scripted in (True, False):
        context = browser.new_context(java_script_enabled=scripted)  # type: ignore[attr-defined]
        page = context.new_page()
        answer = page.goto(f"{site.url}/project/rocket-sience/")
        assert answer is not None
        assert answer.status == 404
        assert page.inner_text("h1") == "Not found"
        assert "/project/rocket-sience/" in page.inner_text("header")
        assert page.inner_text("main, body").count("rocket-science") >= 1
        page.click("text=rocket-science")  # the near name
        page.wait_for_url(f"{site.url}/project/rocket-science/")
        page.goto(f"{site.url}/no/such/page")
        if scripted:  # the landing page's search, as one types
            page.fill("#q", "other")
            page.wait_for_selector("#hits a")
            assert page.inner_text("#hits").startswith("other-thing")
            page.screenshot(path=str(SHOTS / "not-found.png"), full_page=False)
        page.fill("#q", "Other_Thing")
        page.click("#search button")
        page.wait_for_url(f"{site.url}/project/other-thing/")
        page.click("text=skypi")
        page.wait_for_url(f"{site.url}/")
        context.close()
    for accept in ("application/vnd.pypi.simple.v1+json", "text/html"):
        plain = httpx.get(f"{site.url}/simple/rocket-sience/", headers={"Accept": accept})
        assert (plain.status_code, plain.text) == (404, "Not Found\n")


def test_a_views_page_shows_a_person_what_it_held_back_and_why(
    browser: object, tmp_path: Path
) -> None:
    """A person opens a view's project page: the listed file is a link, what the policy held
    back is a table of text (the cooldown's end, the deny-list, an OSV id and its severity),
    and upstream's hostile text stays text."""
    now = datetime.now(UTC)
    upstream = StaticUpstream().start()
    folder = tmp_path / "packages"
    folder.mkdir()
    try:
        for version in ("1.0", "1.5", "3.0"):
            upstream.add_wheel("demo", version, now - timedelta(days=30))
        upstream.add_wheel("demo", "2.0", now - timedelta(days=1))
        policy = ["--cooldown-days", "7", "--deny", "demo==1.5", "--block-severity", "high"]
        run_cli("view", "add", "safe", "--dir", str(folder), "--upstream", upstream.url, *policy)
        osv = tmp_path / "osv.json"
        hostile = "<img src=x onerror=\"window.pwned='osv'\"> in demo"
        affected = [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["3.0"]}]
        rating = {"severity": "HIGH"}
        osv.write_text(json.dumps({"id": "GHSA-7777-6666-5555", "summary": hostile,
                                   "database_specific": rating, "affected": affected}))  # fmt: skip
        run_cli("view", "osv", str(osv), "--dir", str(folder))
        server = start_server(folder, tmp_path / "server.log")
        try:
            page = browser.new_context().new_page()  # type: ignore[attr-defined]
            page.goto(f"{server.url}/view/safe/simple/demo/")
            links = [a.inner_text() for a in page.query_selector_all("a")]
            assert links == [wheel_name("demo", "1.0")]
            rows = [
                [cell.inner_text() for cell in row.query_selector_all("td")]
                for row in page.query_selector_all("table tr")
            ][1:]
            reasons = {version: (reason, detail) for _file, version, reason, detail in rows}
            assert reasons["2.0"][0].startswith("cooldown until ")
            assert reasons["1.5"] == ("deny-list", "denied by 'demo==1.5'")
            assert reasons["3.0"][0] == "severity"
            assert reasons["3.0"][1].startswith("GHSA-7777-6666-5555 (high, database_specific")
            assert reasons["3.0"][1].endswith(hostile)  # shown as text, never run
            assert page.query_selector_all("img") == []
            assert page.evaluate("window.pwned") is None
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "view-held-back.png"), full_page=True)
        finally:
            server.stop()
    finally:
        upstream.stop()
