"""Render pages: PEP 503 HTML (with PEP 629/592/658/714 attributes) and PEP 691 JSON.

The JSON form is the stored manifest itself (:meth:`ProjectPage.to_json_bytes`); HTML is
rendered from the same model so both always agree.
"""

from __future__ import annotations

import re
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


def render_project_html(page: ProjectPage) -> bytes:
    """The PEP 503 page: one anchor per file, attributes always quoted and escaped."""
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
    lines += ["  </body>", "</html>", ""]
    return "\n".join(lines).encode()


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
