"""Render pages: PEP 503 HTML (with PEP 629/592/658/714 attributes) and PEP 691 JSON.

The JSON form is the stored manifest itself (:meth:`ProjectPage.to_json_bytes`); HTML is
rendered from the same model so both always agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final
from urllib.parse import quote

from skypi.core.pages import HTML_API_VERSION, ProjectPage, RootListing, format_time

_SERIAL_RE: Final = re.compile(rb'<meta name="skypi:serial" content="(\d+)">')


def _head(title: str, serial: int, page: ProjectPage | None = None) -> list[str]:
    status = []
    if page is not None:  # PEP 792
        status.append(f'    <meta name="pypi:project-status" content="{escape(page.status)}">')
        if page.status_reason:
            reason = escape(page.status_reason)
            status.append(f'    <meta name="pypi:project-status-reason" content="{reason}">')
    return [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        f'    <meta name="pypi:repository-version" content="{HTML_API_VERSION}">',
        *status,
        f'    <meta name="skypi:serial" content="{serial}">',
        f"    <title>{escape(title)}</title>",
        "  </head>",
        "  <body>",
        f"    <h1>{escape(title)}</h1>",
    ]


def render_project_html(page: ProjectPage, held_back: Sequence[HeldBack] = ()) -> bytes:
    """The PEP 503 page: one anchor per file, attributes always quoted and escaped; for a
    view's page, what the view held back and why, as text after the anchors."""
    lines = _head(f"Links for {page.name}", page.serial, page)
    for f in page.listed_files():
        attrs = [f'href="{escape(f.href)}#sha256={f.sha256}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{escape(f.requires_python)}"')
        if f.metadata_sha256:
            value = f"sha256={f.metadata_sha256}"
            attrs.append(f'data-dist-info-metadata="{value}"')
            attrs.append(f'data-core-metadata="{value}"')
        if f.yanked is not None:
            attrs.append(f'data-yanked="{escape(f.yanked)}"')
        attrs.append(f'data-upload-time="{format_time(f.upload_time)}"')
        attrs.append(f'data-size="{f.size}"')
        lines.append(f"    <a {' '.join(attrs)}>{escape(f.filename)}</a><br />")
    lines += _held_back(held_back)
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


@dataclass(frozen=True)
class HeldBack:
    """A file of upstream's that a view does not list: its name, version, reason (a word of
    ``skypi view explain``) and the reason's details (upstream and OSV text: hostile)."""

    filename: str
    version: str
    reason: str
    detail: str = ""


def _held_back(held: Sequence[HeldBack]) -> list[str]:
    """The section of a view's HTML page that says what it held back. Only text: PEP 503
    clients read every anchor of the page as a file, so nothing here is one; a PEP 503 page
    may hold any other HTML besides its anchors.

    >>> for line in _held_back([HeldBack("x-2.0.tar.gz", "2.0", "cooldown", "<b>")]):
    ...     print(line)
        <h2>Held back by this view</h2>
        <p>Upstream has these files; this view does not list them.</p>
        <table>
          <tr><th>File</th><th>Version</th><th>Reason</th><th>Details</th></tr>
          <tr><td>x-2.0.tar.gz</td><td>2.0</td><td>cooldown</td><td>&lt;b&gt;</td></tr>
        </table>
    """
    if not held:
        return []
    rows = [
        f"      <tr><td>{escape(h.filename)}</td><td>{escape(h.version)}</td>"
        f"<td>{escape(h.reason)}</td><td>{escape(h.detail)}</td></tr>"
        for h in held
    ]
    return [
        "    <h2>Held back by this view</h2>",
        "    <p>Upstream has these files; this view does not list them.</p>",
        "    <table>",
        "      <tr><th>File</th><th>Version</th><th>Reason</th><th>Details</th></tr>",
        *rows,
        "    </table>",
    ]


def render_root_html(root: RootListing) -> bytes:
    lines = _head("Simple index", root.serial)
    for name in sorted(root.projects):
        href = quote(name, safe="") + "/"
        lines.append(f'    <a href="{href}">{escape(root.projects[name])}</a><br />')
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


def html_serial(html: bytes) -> int:
    """The serial a rendered page was made from (-1 when it has none)."""
    match = _SERIAL_RE.search(html)
    return int(match.group(1)) if match else -1
