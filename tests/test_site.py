"""Pages for people: rendered by the indexer when files change, served like the index pages."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core import description as description_module
from skypi.core import release as release_module
from skypi.core.description import render_description
from skypi.core.keys import LANDING_KEY, project_site_key, release_key
from skypi.core.pages import FileEntry, ProjectPage, RootListing
from skypi.core.release import Release
from skypi.core.site import render_project_site
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic
from tests.dists import metadata_text, wheel_bytes, wheel_name

HOSTILE = (
    "# Hostile\n\n<script>alert('x')</script>\n\n[click](javascript:alert(1))\n\n"
    '<a href="javascript:alert(2)" onclick="alert(3)">raw</a>\n\n'
    '<img src="x" onerror="alert(4)">\n\n```python\nprint("hi")\n```\n'
)


def _metadata(name: str, version: str, summary: str, description: str, kind: str) -> str:
    head = metadata_text(name, version, summary=summary).rstrip("\n")
    return f"{head}\nDescription-Content-Type: {kind}\n\n{description}"


def _land(store: LocalStore, name: str, version: str, **meta: str) -> str:
    filename = wheel_name(name, version)
    key = f"packages/{name}/{filename}"
    metadata = _metadata(
        name,
        version,
        meta.get("summary", f"{name} does things"),
        meta.get("description", "Plain *words*."),
        meta.get("kind", "text/markdown"),
    )
    store.put(key, wheel_bytes(name, version, metadata=metadata))
    assert Indexer(store).apply([Landed(key)]).added == [filename]
    return filename


@pytest.mark.parametrize(
    ("text", "kind", "contains", "absent"),
    [
        (
            HOSTILE,
            "text/markdown",
            ["<h1>Hostile</h1>", "&lt;script&gt;"],
            ["<script", "javascript:", "onerror", "onclick"],
        ),
        (
            "Title\n=====\n\n`x <javascript:alert(1)>`_\n",
            None,
            ['<a rel="nofollow">x</a>'],
            ["javascript:"],
        ),
        (".. raw:: html\n\n   <script>x</script>\n", "text/x-rst", ["&lt;script&gt;"], ["<script"]),
        ("<b>plain</b>", "text/plain", ["&lt;b&gt;plain&lt;/b&gt;"], ["<b>"]),
        ("*md* GFM ~~x~~", "text/markdown; variant=GFM", ["<em>md</em>", "<del>x</del>"], []),
        ("odd", "application/x-unknown", ["odd"], []),
    ],
)
def test_descriptions_render_as_pypi_renders_them(
    text: str, kind: str | None, contains: list[str], absent: list[str]
) -> None:
    html = render_description(text, kind)
    for part in contains:
        assert part in html
    for part in absent:
        assert part not in html


def test_indexing_writes_the_landing_and_project_pages(store: LocalStore) -> None:
    _land(store, "Alpha_Tools", "1.0", summary="First")
    _land(store, "alpha-tools", "2.0", summary="Second", description=HOSTILE)
    _land(store, "beta", "0.1", kind="text/x-rst", description="Beta\n====\n\nreST here.")
    landing = store.get(LANDING_KEY)[1].decode()
    assert "2 projects" in landing
    assert landing.index("beta-0.1") < landing.index("alpha_tools-2.0")  # newest first
    assert 'href="project/alpha-tools/"' in landing
    assert 'name="viewport"' in landing
    page = store.get(project_site_key("alpha-tools"))[1].decode()  # type: ignore[arg-type]
    assert "Second" in page
    assert "<h1>Hostile</h1>" in page
    assert page.index('id="v2.0"') < page.index('id="v1.0"')  # versions newest first
    assert "<script>alert" not in page
    assert "javascript:" not in page
    assert page.count("<script>") == 1  # ours (address and search), nothing from an upload
    sha = ProjectPage.from_json_bytes(store.get("simple/alpha-tools/index.json")[1]).files[0]
    assert sha.sha256 in page
    root = RootListing.from_json_bytes(store.get("simple/index.json")[1])
    assert root.summaries == {"alpha-tools": "Second", "beta": "beta does things"}
    assert "<p>reST here.</p>" in store.get(project_site_key("beta"))[1].decode()  # type: ignore[arg-type]


def test_a_release_is_rendered_once(store: LocalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = release_module.render_description
    monkeypatch.setattr(
        release_module, "render_description", lambda t, *rest: calls.append(t) or real(t, *rest)
    )
    _land(store, "gamma", "1.0")
    sdist_free = store.get(release_key("gamma", "1.0"))[1]  # type: ignore[arg-type]
    assert json.loads(sdist_free)["summary"] == "gamma does things"
    # Another file of the same release, and a replay: no new rendering.
    key = "packages/gamma/gamma-1.0-py2-none-any.whl"
    store.put(
        key, wheel_bytes("gamma", "1.0", metadata=_metadata("gamma", "1.0", "x", "y", "text/plain"))
    )
    Indexer(store).apply([Landed(key), Landed(key)])
    assert len(calls) == 1


def test_yank_shows_its_reason_and_pages_are_served(store: LocalStore) -> None:
    _land(store, "delta", "1.0")
    _land(store, "delta", "1.1")
    admin = add_token(store, "admin")
    client = TestClient(create_app(store, Settings()), follow_redirects=False)
    body = {"version": "1.1", "reason": "broken <b>build</b>"}
    assert (
        client.post("/api/projects/delta/yank", json=body, headers=basic(admin)).status_code == 200
    )
    page = client.get("/project/delta/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Yanked: broken &lt;b&gt;build&lt;/b&gt;" in page.text
    assert "<h1>delta <small>1.0</small></h1>" in page.text  # the newest release not yanked
    assert client.get("/project/Delta/").headers["location"] == "/project/delta/"
    assert client.get("/").status_code == 200
    assert client.get("/project/nope/").status_code == 404
    # pypiserver's upload URL still takes uploads.
    assert client.post("/").status_code in {400, 401}


def test_private_mode_protects_the_pages(store: LocalStore) -> None:
    _land(store, "eps", "1.0")
    client = TestClient(create_app(store, Settings(private=True)), follow_redirects=False)
    assert client.get("/").status_code == 401
    assert client.get("/project/eps/").status_code == 401
    reader = add_token(store, "read")
    assert client.get("/project/eps/", headers=basic(reader)).status_code == 200


def test_the_read_and_upload_paths_do_not_import_the_renderer() -> None:
    code = (
        "import sys, skypi.api.app, skypi.indexer.service, skypi.core.edge, skypi.api.reads;"
        "print('readme_renderer' in sys.modules, 'docutils' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_reindex_brings_the_pages_to_an_index_made_before_them(store: LocalStore) -> None:
    from skypi.indexer.rebuild import Rebuilder

    _land(store, "zeta", "1.0", description="Zeta *docs*.")
    for info in list(store.list("site/")):  # as an older skypi left it
        store.delete(info.key)
    indexer = Indexer(store)
    drift = {str(d) for d in Rebuilder(indexer).run(check=True).drift}
    assert drift == {
        "zeta: site/project/zeta/index.html is missing",
        "(root): site/index.html is missing",
    }
    Rebuilder(indexer).run(check=False)
    assert "<em>docs</em>" in store.get(project_site_key("zeta"))[1].decode()  # type: ignore[arg-type]
    assert "1 project<" in store.get(LANDING_KEY)[1].decode()
    assert Rebuilder(indexer).run(check=True).drift == []


def test_a_huge_description_is_shown_as_plain_text() -> None:
    text = "*x* " * (description_module.MAX_RST_CHARS // 4 + 1)
    html = render_description(text, "text/x-rst")
    assert "<em>" not in html
    assert "*x*" in html


@pytest.mark.parametrize("text", ["> " * 100_000 + "x", "<div>" * 50_000, "- " * 20_000 + "x"])
def test_deeply_nested_markdown_is_shown_as_plain_text(text: str) -> None:
    """Nesting makes the sanitizer quadratic: such a description costs no more than text."""
    html = render_description(text, "text/markdown")
    assert "<blockquote>" not in html
    assert "<div>" not in html


def test_the_sidebar_shows_what_metadata_says_and_nothing_it_smuggles() -> None:
    raw = (
        "Metadata-Version: 2.4\nName: side\nVersion: 1.0\nLicense-Expression: Apache-2.0\n"
        "Author: <b>Eve</b>\nProject-URL: Docs, https://docs.example.com/side\n"
        "Project-URL: Bad, javascript:alert(1)\nProject-URL: Data, data:text/html,x\n"
        "Home-page: https://example.com/\n"
        + "".join(f"Classifier: Topic :: {i}\n" for i in range(500))
        + "\n"
    ).encode()
    release = Release.from_metadata("1.0", raw)
    assert release.links == (
        ("Docs", "https://docs.example.com/side"),
        ("Homepage", "https://example.com/"),
    )
    assert len(release.classifiers) == 100  # bounded: the page stays small
    assert Release.from_json_bytes(release.to_json_bytes()) == release
    now = datetime.now(UTC)
    page = ProjectPage(
        "side",
        "side",
        (FileEntry("side-1.0.tar.gz", "packages/side/side-1.0.tar.gz", "1.0", "0" * 64, 1, now),),
    )
    html = render_project_site(page, release).decode()
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html
    assert "<b>Eve" not in html
    assert "javascript:" not in html
    assert "data:text" not in html
    assert "Apache-2.0" in html


def test_a_release_stored_before_the_sidebar_still_reads() -> None:
    old = b'{"version": "1.0", "summary": "s", "description": "<p>d</p>"}'
    assert Release.from_json_bytes(old) == Release("1.0", "s", "<p>d</p>")


def test_the_landing_page_lists_only_files_that_are_still_there(store: LocalStore) -> None:
    from skypi.indexer.admin import Admin
    from skypi.indexer.service import Gone

    _land(store, "kept", "1.0")
    _land(store, "deleted", "1.0")
    _land(store, "removed", "1.0")
    landing = lambda: store.get(LANDING_KEY)[1].decode()  # noqa: E731
    assert all(wheel_name(p, "1.0") in landing() for p in ("kept", "deleted", "removed"))
    Admin(Indexer(store)).delete("deleted", wheel_name("deleted", "1.0"))  # skypi delete
    key = f"packages/removed/{wheel_name('removed', '1.0')}"
    store.delete(key)  # rm in the folder, aws s3 rm in the bucket: the watcher's event
    Indexer(store).apply([Gone(key)])
    assert wheel_name("kept", "1.0") in landing()
    assert wheel_name("deleted", "1.0") not in landing()
    assert wheel_name("removed", "1.0") not in landing()


# -- a description never stops a page ---------------------------------------------------------

WIDE_TABLE = (
    "+" + "-+" * 3000 + "\n|" + "a|" * 3000 + "\n+" + "-+" * 3000
)  # 18 KB: 25 s of docutils


def test_a_description_that_runs_past_its_time_is_shown_as_plain_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(description_module, "RENDER_SECONDS", 0.2)
    problems: list[str] = []
    html = render_description(WIDE_TABLE, "text/x-rst", problems)
    assert "<table" not in html
    assert "a|a|a|" in html
    assert problems == ["description shown as plain text (rendering took more than 0.2 s)"]
    assert sys.getprofile() is None  # the hook that stopped it is gone
    assert "<table" in render_description("+---+\n| a |\n+---+", "text/x-rst")  # still renders


def test_a_description_that_cannot_be_rendered_is_shown_as_plain_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problems: list[str] = []
    html = render_description("\udcff <b>x</b>", "text/markdown", problems)  # not UTF-8-able
    assert html == "? &lt;b&gt;x&lt;/b&gt;"
    html.encode()  # what is stored can be written as UTF-8
    assert problems[0].startswith("description shown as plain text (UnicodeEncodeError")

    import readme_renderer.rst

    def broken(text: str, **kwargs: object) -> str:  # what a docutils bug raises
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(readme_renderer.rst, "render", broken)
    problems.clear()
    assert render_description("<b>x</b>", "text/x-rst", problems) == "&lt;b&gt;x&lt;/b&gt;"
    assert problems == [
        "description shown as plain text (RecursionError: maximum recursion depth exceeded)"
    ]


def test_a_folded_content_type_is_rendered_and_the_release_keeps_its_summary(
    store: LocalStore,
) -> None:
    """``Description-Content-Type`` folded over two lines (legal in core metadata) broke the
    renderer, and the release lost its summary and description."""
    _land(store, "folded", "1.0", kind="text/markdown;\n variant=GFM", description="*Folded*.")
    page = store.get(project_site_key("folded"))[1].decode()  # type: ignore[arg-type]
    assert "<em>Folded</em>" in page
    assert "folded does things" in page
