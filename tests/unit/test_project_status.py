"""PEP 792 project status and api-version 1.4 on the stored pages (JSON and HTML), as a table."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from skypi.core.pages import (
    FileEntry,
    ProjectPage,
    RootListing,
    check_status,
    held_digest,
    held_files_key,
)
from skypi.core.render import render_project_html, render_root_html

WHEEL = FileEntry(
    filename="foo-1.0-py3-none-any.whl",
    key="packages/foo/foo-1.0-py3-none-any.whl",
    version="1.0",
    sha256="a" * 64,
    size=10,
    upload_time=datetime(2024, 1, 2, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("status", "reason", "json_status", "html_meta", "listed", "uploads"),
    [
        ("active", None, {"status": "active"}, ['content="active"'], True, True),
        (
            "deprecated",
            "use bar",
            {"status": "deprecated", "reason": "use bar"},
            ['content="deprecated"', '"pypi:project-status-reason" content="use bar"'],
            True,
            True,
        ),
        (
            "archived",
            "done <for> good",
            {"status": "archived", "reason": "done <for> good"},
            ['content="archived"', 'content="done &lt;for&gt; good"'],
            True,
            False,
        ),
        ("quarantined", None, {"status": "quarantined"}, ['content="quarantined"'], False, False),
    ],
)
def test_status_on_both_forms(
    status: str,
    reason: str | None,
    json_status: dict[str, str],
    html_meta: list[str],
    listed: bool,
    uploads: bool,
) -> None:
    page = ProjectPage.empty("Foo").with_files((WHEEL,)).with_status(status, reason)
    doc = json.loads(page.to_json_bytes())
    assert doc["meta"]["api-version"] == "1.5"
    assert doc["project-status"] == json_status  # top level, not under meta (PEP 792)
    assert bool(doc["files"]) is listed
    assert doc["versions"] == (["1.0"] if listed else [])
    html = render_project_html(page).decode()
    assert '<meta name="pypi:repository-version" content="1.4">' in html
    assert '<meta name="pypi:project-status" content=' in html
    for meta in html_meta:
        assert meta in html
    assert ("foo-1.0-py3-none-any.whl" in html) is listed
    assert (page.upload_refusal() is None) is uploads
    # Every file is kept through a quarantine, beside the page (held_files_key) and never in
    # it: the public page names no file, URL or hash; a round trip keeps files and status.
    body = page.to_json_bytes()
    held = page.held_files()
    assert (held is None) is listed
    if held is not None:
        assert WHEEL.filename.encode() not in body
        assert WHEEL.sha256.encode() not in body
        assert WHEEL.filename.encode() in held
        assert held_files_key(page.name, held_digest(held)) == f"held/foo/{held_digest(held)}.json"
    stored = {held_digest(held): held} if held is not None else {}
    again = ProjectPage.from_json_bytes(body, stored.__getitem__)
    assert again == page
    assert again.with_status("active", None).listed_files() == [WHEEL]


def test_upload_refusal_says_why_and_how_to_lift_it() -> None:
    page = ProjectPage.empty("Foo").with_status("archived", "moved to foo2")
    assert page.upload_refusal() == (
        "Project 'Foo' is archived: moved to foo2. It takes no new uploads until an admin "
        "sets it active again (skypi status foo active)."
    )


@pytest.mark.parametrize(
    ("status", "reason", "message"),
    [
        ("retired", None, "status must be one of active, archived, deprecated, quarantined"),
        ("archived", "x" * 1001, "at most 1000"),
        ("archived", "bad\x00reason", "printable"),
    ],
)
def test_invalid_status(status: str, reason: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_status(status, reason)


def test_pages_written_before_status_existed_read_as_active() -> None:
    old = json.loads(ProjectPage.empty("Foo").with_files((WHEEL,)).to_json_bytes())
    del old["project-status"]
    old["meta"]["api-version"] = "1.1"
    page = ProjectPage.from_json_bytes(json.dumps(old).encode())
    assert (page.status, page.status_reason, len(page.files)) == ("active", None, 1)


def test_root_listing_speaks_1_4() -> None:
    root = RootListing().with_project(ProjectPage.empty("Foo").name, "Foo")
    assert json.loads(root.to_json_bytes())["meta"]["api-version"] == "1.5"
    html = render_root_html(root).decode()
    assert '<meta name="pypi:repository-version" content="1.4">' in html
    assert "pypi:project-status" not in html  # a project's own page carries it
