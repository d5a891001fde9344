"""What a release says about itself, from its first file's core metadata: what PyPI's sidebar
shows, and its long description rendered (:mod:`skypi.core.description`). It is stored once
beside the project's page (:func:`skypi.core.keys.release_key`) and never changed: the first
file of a release describes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from packaging.metadata import parse_email

from skypi.core.description import render_description
from skypi.core.errors import reading


@dataclass(frozen=True)
class Release:
    """What a release says about itself, from its first file's core metadata: what PyPI's
    sidebar shows (license, people, links, classifiers, keywords, Requires-Python)."""

    version: str
    summary: str = ""
    description_html: str = ""
    license: str = ""
    author: str = ""
    maintainer: str = ""
    links: tuple[tuple[str, str], ...] = ()  # (label, http(s) URL)
    classifiers: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    requires_python: str = ""

    @classmethod
    def from_fields(
        cls,
        version: str,
        summary: str,
        description: str,
        content_type: str | None,
        problems: list[str] | None = None,
    ) -> Release:
        """Never raises: a description that cannot be rendered is shown as plain text."""
        html = (
            render_description(description, content_type, problems)
            if description.strip() and description.strip() != "UNKNOWN"
            else ""
        )
        return cls(version, " ".join(summary.split()), html)

    @classmethod
    def from_metadata(cls, version: str, raw: bytes, problems: list[str] | None = None) -> Release:
        """A release from its METADATA/PKG-INFO bytes (already checked by the reader); a
        description that cannot be rendered is plain text, and why goes to ``problems``.

        >>> r = Release.from_metadata("1.0", b"Metadata-Version: 2.4\\nName: a\\nVersion: 1.0\\n"
        ...     b"License-Expression: MIT\\nProject-URL: Source, https://example.com/a\\n"
        ...     b"Project-URL: Evil, javascript:alert(1)\\nKeywords: x,y\\n")
        >>> r.license, r.links, r.keywords
        ('MIT', (('Source', 'https://example.com/a'),), ('x', 'y'))
        """
        fields, _ = parse_email(raw.decode("utf-8", errors="replace"))
        text = fields.get("description") or ""
        base = cls.from_fields(
            version,
            str(fields.get("summary") or ""),
            str(text),
            fields.get("description_content_type"),
            problems,
        )
        return replace(
            base,
            license=_license(fields),
            author=_person(fields.get("author"), fields.get("author_email")),
            maintainer=_person(fields.get("maintainer"), fields.get("maintainer_email")),
            links=_links(fields),
            classifiers=tuple(one_line(c, 200) for c in (fields.get("classifiers") or [])[:100]),
            keywords=tuple(one_line(k, 60) for k in (fields.get("keywords") or [])[:40] if k),
            requires_python=one_line(str(fields.get("requires_python") or ""), 100),
        )

    def to_json_bytes(self) -> bytes:
        doc = {
            "version": self.version,
            "summary": self.summary,
            "description": self.description_html,
            "license": self.license,
            "author": self.author,
            "maintainer": self.maintainer,
            "links": [list(link) for link in self.links],
            "classifiers": list(self.classifiers),
            "keywords": list(self.keywords),
            "requires_python": self.requires_python,
        }
        return json.dumps(doc).encode()

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> Release:
        with reading("a release's description"):
            return cls._from_doc(json.loads(raw))

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> Release:
        return cls(
            str(doc["version"]),
            str(doc.get("summary", "")),
            str(doc.get("description", "")),
            license=str(doc.get("license", "")),
            author=str(doc.get("author", "")),
            maintainer=str(doc.get("maintainer", "")),
            links=tuple((str(a), str(b)) for a, b in doc.get("links", [])),
            classifiers=tuple(str(c) for c in doc.get("classifiers", [])),
            keywords=tuple(str(k) for k in doc.get("keywords", [])),
            requires_python=str(doc.get("requires_python", "")),
        )


def one_line(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (metadata fields are the uploader's text)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _license(fields: Any) -> str:
    """License-Expression (PEP 639), else a short License field (some hold the whole text)."""
    expression = fields.get("license_expression")
    if expression:
        return one_line(expression, 100)
    text = str(fields.get("license") or "").strip()
    return one_line(text, 100) if text and "\n" not in text and text != "UNKNOWN" else ""


def _person(name: Any, email: Any) -> str:
    """``Author`` or, failing it, the names in ``Author-email`` (addresses are not shown)."""
    if name and str(name).strip() != "UNKNOWN":
        return one_line(str(name), 200)
    names = [a.split("<", 1)[0].strip(' "') for a in str(email or "").split(",")]
    return one_line(", ".join(n for n in names if n and "@" not in n), 200)


def _links(fields: Any) -> tuple[tuple[str, str], ...]:
    """Project-URL entries and Home-page/Download-URL, http(s) only, at most 20."""
    found: list[tuple[str, str]] = []
    for label, url in (fields.get("project_urls") or {}).items():
        found.append((one_line(label, 60), str(url).strip()))
    for label, key in (("Homepage", "home_page"), ("Download", "download_url")):
        if fields.get(key):
            found.append((label, str(fields[key]).strip()))
    safe = [(label, url) for label, url in found if http_url(url) and len(url) <= 2000]
    return tuple(dict.fromkeys(safe))[:20]


def http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.netloc)
        and not any(c.isspace() or ord(c) < 32 for c in url)
    )


__all__ = ["Release", "http_url", "one_line"]
