"""Pages for people: the landing page at ``/``, a page per project at ``/project/<name>/``,
and the page a browser gets for a path that is not there (:func:`render_not_found`).

The first two are rendered when files change and stored like the index pages, so a static host
serves them (no code runs per request). Their links are relative. Their setup lines spell this
index's address where the renderer knows it (the deployed stack's, from its configuration);
otherwise they say ``INDEX_URL`` with a note on what it stands for, a server that knows its own
URL puts it in as it serves them (:func:`fill_address`), and failing that a small inline script
writes it from ``location``.

A release's long description is rendered once, when its first file is indexed, exactly as PyPI
renders it (``readme-renderer``, which sanitizes with ``nh3``) and stored beside the page
(:func:`release_key`); upload HTML is never passed through. ``readme_renderer`` costs about
0.2 s to import, so it is imported only when a description is rendered.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from functools import lru_cache
from html import escape
from typing import Any, Final
from urllib.parse import quote, urlsplit

from packaging.metadata import parse_email
from packaging.utils import NormalizedName
from packaging.version import InvalidVersion

from skypi.core.errors import CorruptDocument, reading
from skypi.core.filenames import same_version
from skypi.core.keys import LANDING_KEY as LANDING_KEY
from skypi.core.keys import LEGACY_SITE_JSON_KEY as LEGACY_SITE_JSON_KEY
from skypi.core.keys import SITE_PREFIX as SITE_PREFIX
from skypi.core.keys import project_site_key as project_site_key
from skypi.core.keys import release_key as release_key
from skypi.core.pages import (
    FileEntry,
    ProjectPage,
    file_href,
    format_time,
    parse_time,
    parse_version,
)

# The landing page carries its own manifest (project count, last uploads) in a data block, so
# one compare-and-swap of one object updates it. Older versions kept the manifest beside it.
_MANIFEST_OPEN: Final = '<script type="application/json" id="skypi-site">'
_MANIFEST: Final = re.compile(re.escape(_MANIFEST_OPEN).encode() + rb"(.*?)</script>", re.DOTALL)
RECENT: Final = 20  # uploads shown on the landing page
# Longer reST descriptions are shown as plain text: docutils takes seconds on a few hundred
# kilobytes of lists, and the indexer must not spend them on one hostile upload (Markdown's
# renderer, cmark, is linear and fast).
MAX_RST_CHARS: Final = 64 * 1024
# The sanitizer's cost grows with the square of the nesting depth (100,000 nested quotes took
# minutes); real READMEs nest a handful of levels.
MAX_MARKDOWN_CHARS: Final = 512 * 1024
MAX_DEPTH: Final = 64
# What one description may cost: docutils is pure Python, and some reST (a grid table thousands
# of columns wide: 25 s for 18 KB) is far slower than its length suggests. The slowest real
# READMEs take under 2 s on a loaded machine; past this, the description is shown as plain text.
RENDER_SECONDS: Final = 5.0
_TAG: Final = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*?(/?)>")
_VOID: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)


def _depth(html: str) -> int:
    """The deepest element nesting in ``html``, counting every unclosed tag as open.

    >>> _depth("<p><em>a</em><br></p><ul><li><ul><li>b</li></ul></li></ul>")
    4
    """
    depth = deepest = 0
    for match in _TAG.finditer(html):
        closing, name, self_closing = match.groups()
        if name.lower() in _VOID or self_closing:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


# -- descriptions ---------------------------------------------------------------------------


class _OutOfTime(BaseException):
    """Raised inside a renderer that ran past its time (a BaseException, so that no
    ``except Exception`` inside docutils swallows it)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Stop the Python code run inside (in this thread) once ``seconds`` have passed: the
    clock is looked at every 256 function calls, through a profile hook."""
    end = time.monotonic() + seconds
    calls = 0

    def check(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1
            if calls % 256 == 0 and time.monotonic() > end:
                raise _OutOfTime

    previous = sys.getprofile()
    sys.setprofile(check)
    try:
        yield
    finally:
        sys.setprofile(previous)


def render_description(
    text: str, content_type: str | None, problems: list[str] | None = None
) -> str:
    """The long description as PyPI shows it: what warehouse's ``readme.render`` does.

    reST is the default; an unknown type is plain text; reST that fails to render falls back to
    plain text. Every renderer's output is sanitized by ``nh3`` inside ``readme_renderer``.
    Whatever a hostile description does (a renderer raising, or running past
    ``RENDER_SECONDS``), it is shown as plain text, and why is added to ``problems``: a
    description never stops a page from being written.

    >>> render_description("<script>x</script>", "text/markdown")
    '&lt;script&gt;x&lt;/script&gt;\\n'
    >>> render_description("*x*", "text/markdown;\\n variant=GFM")  # a folded header
    '<p><em>x</em></p>\\n'
    """
    try:
        with _deadline(RENDER_SECONDS):
            return _render(text, content_type)
    except (Exception, _OutOfTime) as exc:
        why = (
            f"rendering took more than {RENDER_SECONDS:g} s"
            if isinstance(exc, _OutOfTime)
            else f"{type(exc).__name__}: {str(exc)[:200]}"
        )
        if problems is not None:
            problems.append(f"description shown as plain text ({why})")
        return _plain(text)


def _plain(text: str) -> str:
    """The description as escaped plain text (code points UTF-8 cannot hold replaced)."""
    import readme_renderer.txt

    text = text.encode("utf-8", "replace").decode("utf-8")
    try:
        return str(readme_renderer.txt.render(text) or "")
    except Exception:  # the sanitizer itself: plain escaping cannot fail
        return f"<pre>{escape(text)}</pre>"


def _render(text: str, content_type: str | None) -> str:
    import readme_renderer.markdown
    import readme_renderer.rst
    import readme_renderer.txt

    message = EmailMessage()
    # a folded Description-Content-Type header keeps its line break: unfold it
    message["content-type"] = " ".join((content_type or "text/x-rst").split())
    kind = message.get_content_type()
    params = {k: v for k, v in message["content-type"].params.items() if k != "charset"}
    renderer: Any = {
        "text/x-rst": readme_renderer.rst,
        "text/markdown": readme_renderer.markdown,
    }.get(kind, readme_renderer.txt)
    if renderer is readme_renderer.rst and len(text) > MAX_RST_CHARS:
        renderer, params = readme_renderer.txt, {}
    if renderer is readme_renderer.markdown:
        to_html = readme_renderer.markdown.variants.get(params.get("variant", "GFM"))
        if len(text) > MAX_MARKDOWN_CHARS or (
            to_html is not None and _depth(to_html(text)) > MAX_DEPTH
        ):
            renderer, params = readme_renderer.txt, {}
    try:
        rendered = renderer.render(text, **params)
    except TypeError:  # a parameter the renderer does not take (PyPI refuses these uploads)
        rendered = renderer.render(text)
    if rendered is None:
        rendered = readme_renderer.txt.render(text)
    return str(rendered or "")


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
            classifiers=tuple(_short(c, 200) for c in (fields.get("classifiers") or [])[:100]),
            keywords=tuple(_short(k, 60) for k in (fields.get("keywords") or [])[:40] if k),
            requires_python=_short(str(fields.get("requires_python") or ""), 100),
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


def _short(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (metadata fields are the uploader's text)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _license(fields: Any) -> str:
    """License-Expression (PEP 639), else a short License field (some hold the whole text)."""
    expression = fields.get("license_expression")
    if expression:
        return _short(expression, 100)
    text = str(fields.get("license") or "").strip()
    return _short(text, 100) if text and "\n" not in text and text != "UNKNOWN" else ""


def _person(name: Any, email: Any) -> str:
    """``Author`` or, failing it, the names in ``Author-email`` (addresses are not shown)."""
    if name and str(name).strip() != "UNKNOWN":
        return _short(str(name), 200)
    names = [a.split("<", 1)[0].strip(' "') for a in str(email or "").split(",")]
    return _short(", ".join(n for n in names if n and "@" not in n), 200)


def _links(fields: Any) -> tuple[tuple[str, str], ...]:
    """Project-URL entries and Home-page/Download-URL, http(s) only, at most 20."""
    found: list[tuple[str, str]] = []
    for label, url in (fields.get("project_urls") or {}).items():
        found.append((_short(label, 60), str(url).strip()))
    for label, key in (("Homepage", "home_page"), ("Download", "download_url")):
        if fields.get(key):
            found.append((label, str(fields[key]).strip()))
    safe = [(label, url) for label, url in found if _http_url(url) and len(url) <= 2000]
    return tuple(dict.fromkeys(safe))[:20]


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.netloc)
        and not any(c.isspace() or ord(c) < 32 for c in url)
    )


# -- the landing page's manifest ------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    name: NormalizedName
    display_name: str
    version: str
    filename: str
    upload_time: datetime


@dataclass(frozen=True)
class SiteSummary:
    """What the landing page shows: the project count and the last uploads."""

    projects: int = 0
    recent: tuple[Upload, ...] = ()
    serial: int = 0
    root_serial: int = 0  # of the root listing the count was taken from

    def with_uploads(self, uploads: list[Upload]) -> SiteSummary:
        if not uploads:
            return self
        seen = {u.filename for u in uploads}
        merged = sorted(
            [*uploads, *(u for u in self.recent if u.filename not in seen)],
            key=lambda u: u.upload_time,
            reverse=True,
        )
        return replace(self, recent=tuple(merged[:RECENT]), serial=self.serial + 1)

    def without(self, gone: Iterable[tuple[str, str]]) -> SiteSummary:
        """The summary without the uploads of files that left the index (deleted, removed
        from the folder): the landing page lists only what can be installed.

        >>> from datetime import UTC, datetime
        >>> u = Upload(NormalizedName("a"), "a", "1.0", "a-1.0.tar.gz", datetime.now(UTC))
        >>> s = SiteSummary(recent=(u,))
        >>> s.without([("a", "a-1.0.tar.gz")]).recent, s.without([("b", "a-1.0.tar.gz")]) is s
        ((), True)
        """
        drop = set(gone)
        if not drop:
            return self
        kept = tuple(u for u in self.recent if (u.name, u.filename) not in drop)
        if len(kept) == len(self.recent):
            return self
        return replace(self, recent=kept, serial=self.serial + 1)

    def with_listing(self, count: int, root_serial: int) -> SiteSummary:
        """The project count of the root listing at ``root_serial``; an older listing's count
        (a slower writer's) changes nothing."""
        if root_serial < self.root_serial or (count, root_serial) == (
            self.projects,
            self.root_serial,
        ):
            return self
        return replace(self, projects=count, root_serial=root_serial, serial=self.serial + 1)

    def to_json_bytes(self) -> bytes:
        doc = {
            "serial": self.serial,
            "projects": self.projects,
            "root_serial": self.root_serial,
            "recent": [
                {
                    "name": u.name,
                    "display": u.display_name,
                    "version": u.version,
                    "filename": u.filename,
                    "time": format_time(u.upload_time),
                }
                for u in self.recent
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> SiteSummary:
        with reading("the landing page's manifest"):
            return cls._from_doc(json.loads(raw))

    @classmethod
    def _from_doc(cls, doc: dict[str, Any]) -> SiteSummary:
        recent = tuple(
            Upload(
                NormalizedName(u["name"]),
                u["display"],
                u["version"],
                u["filename"],
                parse_time(u["time"]),
            )
            for u in doc["recent"]
        )
        return cls(int(doc["projects"]), recent, int(doc["serial"]), int(doc.get("root_serial", 0)))

    def to_data_block(self) -> str:
        """The manifest as a data block in the landing page: JSON with ``<``, ``>`` and ``&``
        escaped, so no text in it can close the element (a data block is never executed)."""
        text = self.to_json_bytes().decode().strip()
        for char in "<>&":
            text = text.replace(char, f"\\u{ord(char):04x}")
        return f"{_MANIFEST_OPEN}{text}</script>"

    @classmethod
    def from_landing(cls, html: bytes) -> SiteSummary | None:
        """The manifest a rendered landing page carries (None: a page without one).

        >>> s = SiteSummary(projects=3, serial=9)
        >>> SiteSummary.from_landing(render_landing(s)) == s
        True
        """
        found = _MANIFEST.search(html)
        if found is None:
            return None
        try:
            return cls.from_json_bytes(found.group(1))
        except CorruptDocument:
            return None


# -- rendering ------------------------------------------------------------------------------

# Fills in this index's address from where the page was loaded, and runs the search box.
_SCRIPT: Final = """
(function () {
  var root = new URL(document.body.dataset.root, location.href);
  root.username = ''; root.password = ''; root.search = ''; root.hash = '';
  var index = root.href.replace(/\\/$/, '');
  document.querySelectorAll('.u').forEach(function (e) { e.textContent = index; });
  document.querySelectorAll('.h').forEach(function (e) { e.textContent = root.hostname; });
  var token = new URL(root.href);
  token.username = '__token__'; token.password = 'TOKEN';
  document.querySelectorAll('.t').forEach(function (e) {
    e.textContent = token.href.replace(/\\/$/, '');
  });
  token.password = '';
  document.querySelectorAll('.k').forEach(function (e) {
    e.textContent = token.href.replace(/\\/$/, '');
  });
  document.querySelectorAll('.nojs').forEach(function (e) { e.hidden = true; });
  document.querySelectorAll('pre > code').forEach(function (code) {
    var button = document.createElement('button');
    button.className = 'copy'; button.type = 'button'; button.textContent = 'Copy';
    button.addEventListener('click', function () {
      navigator.clipboard.writeText(code.textContent).then(function () {
        button.textContent = 'Copied';
        setTimeout(function () { button.textContent = 'Copy'; }, 1500);
      });
    });
    code.parentNode.appendChild(button);
  });
  var box = document.getElementById('q');
  if (!box) return;
  document.getElementById('search').hidden = false;
  var list = document.getElementById('hits'), projects = null;
  function show() {
    var q = box.value.trim().toLowerCase();
    list.textContent = '';
    if (!q || !projects) return;
    projects.filter(function (p) {
      return p.name.toLowerCase().indexOf(q) !== -1 ||
        (p._summary || '').toLowerCase().indexOf(q) !== -1;
    }).slice(0, 50).forEach(function (p) {
      var li = document.createElement('li'), a = document.createElement('a');
      var normalized = p.name.replace(/[-_.]+/g, '-').toLowerCase();  // PEP 503
      a.href = new URL('project/' + encodeURIComponent(normalized) + '/', root);
      a.textContent = p.name;
      li.appendChild(a);
      if (p._summary) li.appendChild(document.createTextNode(' \\u2014 ' + p._summary));
      list.appendChild(li);
    });
    if (!list.children.length) list.textContent = 'No project matches.';
  }
  box.addEventListener('input', show);
  fetch(new URL('simple/', root), {headers: {Accept: 'application/vnd.pypi.simple.v1+json'}})
    .then(function (r) { return r.json(); })
    .then(function (doc) { projects = doc.projects; show(); });
})();
"""
_SCRIPT_HASH: Final = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
# Defence in depth behind the sanitizer: no script but ours, no plugins, no form sent elsewhere
# (the search box's form goes to this index).
_CSP: Final = (
    f"default-src 'self'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src * data:; object-src 'none'; base-uri 'none'; form-action 'self'"
)
_STYLE: Final = """
body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:0 1rem;color:#222}
header{border-bottom:1px solid #ddd;margin-bottom:1rem}
pre,code{font:14px/1.4 ui-monospace,monospace;background:#f4f4f4}
pre{padding:.6rem;overflow-x:auto;white-space:pre}
table{border-collapse:collapse;width:100%;display:block;overflow-x:auto}
td,th{text-align:left;padding:.2rem .6rem .2rem 0;vertical-align:top;white-space:nowrap}
.hash{font:12px ui-monospace,monospace;color:#555;white-space:normal;word-break:break-all;
min-width:10rem}
.yanked{color:#a00}.muted{color:#666}
.description{border-top:1px solid #ddd;margin-top:1rem;overflow-wrap:anywhere}
.description img{max-width:100%}
input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}
#search{display:flex;flex-wrap:wrap;gap:.4rem}#search label,#search ul{flex-basis:100%}
#search input{flex:1;width:auto;min-width:0}#search button{font-size:1rem;padding:.4rem .8rem}
main{min-width:0}
.meta h2{font-size:1rem;margin:1rem 0 .3rem}.meta ul{padding-left:1.1rem;margin:0}
.meta dl{margin:0}.meta dt{font-weight:600}.meta dd{margin:0 0 .4rem;overflow-wrap:anywhere}
.classifiers{font-size:.85rem}
.badge{font-size:.75rem;color:#a00;border:1px solid #a00;border-radius:.3rem;padding:0 .3rem}
@media (min-width:50rem){.cols{display:grid;grid-template-columns:minmax(0,1fr) 15rem;gap:2rem}}
@media (max-width:40rem){tr:first-child{display:none}
tr{display:block;border-bottom:1px solid #eee;padding:.3rem 0}
td{display:inline-block;white-space:normal}td:first-child,td.hash{display:block}
td:first-child{overflow-wrap:anywhere}}
pre{position:relative}
.copy{position:absolute;top:.3rem;right:.3rem;font-size:.8rem}
"""
_NOJS: Final = (
    '<p class="nojs muted">INDEX_URL below stands for this page\'s address without its path '
    "(for example https://pypi.example.com), INDEX_HOST for its host name.</p>"
)


@dataclass(frozen=True)
class Address:
    """How the setup lines spell this index's address: its URL (``u``), its host name for
    netrc (``h``), the URL with a token in it (``t``) and with the user name only (``k``), and
    the note that explains placeholders (empty when the address is known)."""

    u: str
    h: str
    t: str
    k: str
    note: str = ""

    @classmethod
    def of(cls, url: str | None) -> Address:
        """The address ``url`` (an http(s) URL, its path kept, any user info and trailing
        slash dropped), or, when it is None or no such URL, the placeholders that the page's
        script fills in from where it was loaded (and the note saying what they stand for).

        >>> a = Address.of("https://u:p@pypi.example.com:8443/")
        >>> a.u, a.h, a.t, a.k
        ('https://pypi.example.com:8443', 'pypi.example.com', \
'https://__token__:TOKEN@pypi.example.com:8443', 'https://__token__@pypi.example.com:8443')
        >>> Address.of("javascript:alert(1)") == Address.of(None)
        True
        """
        if url is None or not _http_url(url):
            return PLACEHOLDERS
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        host = netloc.rsplit(":", 1)[0] if not netloc.endswith("]") else netloc
        path = parts.path.rstrip("/")

        def spelled(user: str) -> str:
            return escape(f"{parts.scheme}://{user}{netloc}{path}")

        return cls(spelled(""), escape(host), spelled("__token__:TOKEN@"), spelled("__token__@"))


PLACEHOLDERS: Final = Address(
    '<span class="u">INDEX_URL</span>',
    '<span class="h">INDEX_HOST</span>',
    '<span class="t">https://__token__:TOKEN@INDEX_HOST</span>',
    '<span class="k">https://__token__@INDEX_HOST</span>',
    _NOJS,
)


def fill_address(html: bytes, url: str) -> bytes:
    """A page rendered without its address (:data:`PLACEHOLDERS`) with ``url`` put in, as if
    it had been rendered with it: what a server that knows its own URL does to the stored
    pages it serves (their script then has nothing left to fill in).

    >>> fill_address(render_landing(SiteSummary()), "http://127.0.0.1:8080") == render_landing(
    ...     SiteSummary(), "http://127.0.0.1:8080")
    True
    """
    known = Address.of(url)
    if known is PLACEHOLDERS or PLACEHOLDERS.u.encode() not in html:
        return html
    text = html.decode()
    text = text.replace(PLACEHOLDERS.note + "\n", "")
    for placeholder, value in zip(_spans(PLACEHOLDERS), _spans(known), strict=True):
        text = text.replace(placeholder, value)
    return text.encode()


def _spans(address: Address) -> tuple[str, str, str, str]:
    return address.u, address.h, address.t, address.k


def _document(title: str, root: str, serial: int, body: list[str]) -> bytes:
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="referrer" content="no-referrer">',
        f'<meta name="skypi:serial" content="{serial}">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        f'<body data-root="{root}">',
        *body,
        f"<script>{_SCRIPT}</script>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(lines).encode()


def _size(size: int) -> str:
    """
    >>> _size(999), _size(123_456), _size(5_300_000)
    ('999 B', '123.5 kB', '5.3 MB')
    """
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _when(moment: datetime) -> str:
    return f'<time datetime="{format_time(moment)}">{moment:%Y-%m-%d %H:%M} UTC</time>'


def _code(text: str) -> str:
    """A block of setup lines; ``U``/``H`` markers become the address spans."""
    return f"<pre><code>{text}</code></pre>"


def setup_sections(url: str | None = None) -> list[str]:
    """Copy-paste setup for pip, uv, poetry and twine, public and with a token; ``url`` is
    this index's address when it is known (else placeholders, filled in by the script)."""
    address = Address.of(url)
    U, H, T, K = _spans(address)
    return [
        "<h2>Install from this index</h2>",
        *_note(address),
        "<h3>pip</h3>",
        _code(f"pip install --index-url {U}/simple/ PACKAGE"),
        "<p>or for good, in <code>pip.conf</code> (<code>~/.config/pip/pip.conf</code>):</p>",
        _code(f"[global]\nindex-url = {U}/simple/"),
        "<h3>uv</h3>",
        "<p>In <code>pyproject.toml</code>. With <code>explicit = true</code> only the packages "
        "you name in <code>[tool.uv.sources]</code> come from this index and everything else "
        "from PyPI; with <code>default = true</code> instead, every package comes from here.</p>",
        _code(
            '[[tool.uv.index]]\nname = "skypi"\n'
            f'url = "{U}/simple/"\npublish-url = "{U}/legacy/"\nexplicit = true\n\n'
            '[tool.uv.sources]\nPACKAGE = { index = "skypi" }'
        ),
        _code(f"uv pip install --index-url {U}/simple/ PACKAGE\nuv publish --index skypi dist/*"),
        "<h3>poetry</h3>",
        _code(
            f"poetry source add --priority=explicit skypi {U}/simple/\n"
            "poetry add --source skypi PACKAGE\n"
            f"poetry config repositories.skypi {U}/legacy/\n"
            "poetry publish --build -r skypi"
        ),
        "<h3>twine</h3>",
        "<p>In <code>~/.pypirc</code>, then <code>twine upload -r skypi dist/*</code>:</p>",
        _code(
            "[distutils]\nindex-servers = skypi\n\n[skypi]\n"
            f"repository = {U}/legacy/\nusername = __token__\npassword = TOKEN"
        ),
        "<h2>With a token</h2>",
        "<p>Uploads need a token with the upload scope; a private index also needs one (read "
        "scope) for every read. The user name is always <code>__token__</code> and the token is "
        "the password. Keep it out of files you commit:</p>",
        "<h3>netrc (pip, uv and poetry read it; twine does not)</h3>",
        "<p>In <code>~/.netrc</code> (<code>chmod 600</code>):</p>",
        _code(f"machine {H}\nlogin __token__\npassword TOKEN"),
        "<h3>pip</h3>",
        _code(
            f"export PIP_INDEX_URL={U}/simple/\n"
            "# or the token in the URL (keep it out of logs):\n"
            f"#   {T}/simple/\n"
            "# or from a keyring:\n"
            f"keyring set {U}/simple/ __token__\n"
            "# (pip's subprocess provider needs the user name in the URL)\n"
            f"pip install --keyring-provider subprocess --index-url {K}/simple/ PACKAGE"
        ),
        "<h3>uv</h3>",
        _code(
            "export UV_INDEX_SKYPI_USERNAME=__token__\nexport UV_INDEX_SKYPI_PASSWORD=TOKEN\n"
            f"# or stored by uv itself:\nuv auth login {U}/simple/ --username __token__ "
            "--password TOKEN\nuv publish --index skypi --token TOKEN dist/*"
        ),
        "<h3>poetry</h3>",
        _code("poetry config http-basic.skypi __token__ TOKEN"),
        "<h3>twine</h3>",
        _code("TWINE_USERNAME=__token__ TWINE_PASSWORD=TOKEN twine upload -r skypi dist/*"),
    ]


def _note(address: Address) -> list[str]:
    return [address.note] if address.note else []


def search_box(root: str) -> list[str]:
    """The search over project names: a form that, without JavaScript, goes to the project
    of the name typed (``project/?q=NAME`` redirects to it); the script lists the projects
    matching as one types."""
    return [
        f'<form id="search" action="{root}project/" method="get" role="search">',
        '<label for="q">Search projects</label>',
        '<input id="q" name="q" type="search" placeholder="name or summary" '
        'autocomplete="off" required>',
        '<button type="submit">Go to project</button>',
        '<ul id="hits"></ul>',
        "</form>",
    ]


def render_landing(summary: SiteSummary, url: str | None = None) -> bytes:
    count = summary.projects
    body = [
        "<header>",
        "<h1>skypi</h1>",
        f"<p>A Python package index at <code>{Address.of(url).u}/simple/</code> with "
        f'<a href="simple/">{count} project{"" if count == 1 else "s"}</a>.</p>',
        "</header>",
        *search_box("./"),
        "<h2>Last uploads</h2>",
    ]
    if summary.recent:
        body.append(
            "<table><tr><th>Project</th><th>Version</th><th>File</th><th>Uploaded</th></tr>"
        )
        for u in summary.recent:
            href = f"project/{quote(u.name, safe='')}/"
            body.append(
                f'<tr><td><a href="{href}">{escape(u.display_name)}</a></td>'
                f"<td>{escape(u.version)}</td><td>{escape(u.filename)}</td>"
                f"<td>{_when(u.upload_time)}</td></tr>"
            )
        body.append("</table>")
    else:
        body.append('<p class="muted">Nothing yet: upload with twine or uv (below).</p>')
    body += setup_sections(url)
    body.append(summary.to_data_block())
    return _document("skypi", "./", summary.serial, body)


def render_not_found(what: str, near: Sequence[str] = ()) -> bytes:
    """The page a person gets instead of a bare "Not Found": what was asked for, the projects
    whose names are close to it (where the server knows them), the search box, and the way
    back to the index. Its links start at ``/``: it is served at whatever path was missed.

    >>> html = render_not_found("/project/<x>/", ["x-y"]).decode()
    >>> "&lt;x&gt;" in html, 'href="/project/x-y/"' in html, 'action="/project/"' in html
    (True, True, True)
    """
    body = [
        '<header><p><a href="/">skypi</a></p>',
        "<h1>Not found</h1>",
        f"<p>Nothing here answers to <code>{escape(_short(what, 300))}</code>.</p>",
        "</header>",
    ]
    if near:
        body.append("<p>Did you mean:</p><ul>")
        body += [
            f'<li><a href="/project/{quote(name, safe="")}/">{escape(name)}</a></li>'
            for name in near
        ]
        body.append("</ul>")
    body += search_box("/")
    body.append(
        '<p><a href="/">The index\'s front page</a> (how to install from it, the last '
        'uploads) and <a href="/simple/">every project</a>.</p>'
    )
    return _document("Not found - skypi", "/", 0, body)


def near_names(asked: str, names: Iterable[str], count: int = 5) -> list[str]:
    """The project names closest to ``asked`` (normalized the PEP 503 way first), best first.

    >>> near_names("Rocket_Sience", ["rocket-science", "rockets", "numpy"])
    ['rocket-science', 'rockets']
    """
    wanted = re.sub(r"[-_.]+", "-", asked).lower()
    return difflib.get_close_matches(wanted, list(names), n=count, cutoff=0.6)


def wants_page(accept: str | None, fetch_dest: str | None) -> bool:
    """Whether a request is a person's browser loading a page (so a 404 is answered with the
    page for people): ``Sec-Fetch-Dest: document`` where the browser sends it, else an Accept
    that offers XHTML the way browsers do. pip, uv and other clients send neither; a client
    that asks for the simple API's types is never a browser.

    >>> chromium = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    >>> wants_page(chromium, "document"), wants_page(chromium, None), wants_page("text/html", None)
    (True, True, False)
    >>> wants_page("application/vnd.pypi.simple.v1+json, text/html;q=0.01", "document")
    False
    """
    accept = (accept or "").lower()
    if "application/vnd.pypi.simple" in accept:
        return False
    if fetch_dest:
        return fetch_dest.strip().lower() == "document"
    return "application/xhtml+xml" in accept


def _prerelease(version: str) -> bool:
    try:
        return parse_version(version).is_prerelease
    except InvalidVersion:  # pragma: no cover - versions are validated on the way in
        return False


def latest_version(page: ProjectPage) -> str | None:
    """The version a project page describes: the newest final release that is not yanked,
    else the newest not yanked, else the newest.

    >>> from datetime import UTC, datetime
    >>> now = datetime.now(UTC)
    >>> f = lambda v, y=None: FileEntry(f"a-{v}.tar.gz", "k", v, "0", 1, now, yanked=y)
    >>> latest_version(ProjectPage("a", "a", (f("1.0"), f("2.0b1"), f("1.5", "bad"))))
    '1.0'
    """
    versions = page.versions()[::-1]
    unyanked = {f.version for f in page.files if f.yanked is None}
    live = [v for v in versions if v in unyanked]
    final = [v for v in live if not _prerelease(v)]
    return next(iter(final or live or versions), None)


@lru_cache(maxsize=16384)
def _release_rows(version: str, files: tuple[FileEntry, ...]) -> tuple[str, ...]:
    """A release's section, made once per process for the same files (a project page of
    thousands of releases is rendered on every upload to it). Its rows are each file's row,
    made once: every upload to a release of many files keeps another section, which must
    share its rows with the last one, not copy them (about 16 bytes a file, not 400)."""
    yanked = [f for f in files if f.yanked is not None]
    first = min(f.upload_time for f in files)
    rows = [
        f'<section id="v{escape(version)}">',
        f'<h3>{escape(version)} <small class="muted">{_when(first)}</small></h3>',
    ]
    if yanked and len(yanked) == len(files):
        reason = yanked[0].yanked or "no reason given"
        rows.append(f'<p class="yanked">Yanked: {escape(reason)}</p>')
    rows.append(
        "<table><tr><th>File</th><th>Size</th><th>Uploaded</th><th>Requires-Python</th>"
        "<th>SHA-256</th></tr>"
    )
    marked = bool(yanked) and len(yanked) < len(files)
    rows += [_file_row(f, marked) for f in sorted(files, key=lambda f: f.filename)]
    rows += ["</table>", "</section>"]
    return tuple(rows)


@lru_cache(maxsize=32768)  # about 40 MB at most
def _file_row(f: FileEntry, marked: bool) -> str:
    mark = ""
    if marked and f.yanked is not None:
        mark = f' <span class="yanked">(yanked: {escape(f.yanked or "no reason given")})</span>'
    return (
        f'<tr><td><a href="{escape(file_href(f.key))}#sha256={f.sha256}">'
        f"{escape(f.filename)}</a>{mark}</td>"
        f"<td>{_size(f.size)}</td><td>{_when(f.upload_time)}</td>"
        f"<td>{escape(f.requires_python or '')}</td>"
        f'<td class="hash">{f.sha256}</td></tr>'
    )


def render_project_site(
    page: ProjectPage, release: Release | None, url: str | None = None
) -> bytes:
    """A project's page: the install line, what its newest release says, every version."""
    address = Address.of(url)
    latest = latest_version(page)
    shown = release if release and latest and same_version(release.version, latest) else None
    name = escape(page.display_name)
    body = [
        '<header><p><a href="../../">skypi</a> / '
        f'<a href="../../simple/{quote(page.name, safe="")}/">simple index</a></p>',
        f"<h1>{name} <small>{escape(latest or '')}</small></h1>",
    ]
    if shown and shown.summary:
        body.append(f"<p>{escape(shown.summary)}</p>")
    head = len(body) + 1  # the header, then the page's columns
    body += [
        "</header>",
        *_note(address),
        _code(
            f"pip install --index-url {address.u}/simple/ {escape(page.name)}\n"
            f"uv pip install --index-url {address.u}/simple/ {escape(page.name)}"
        ),
    ]
    listed = page.listed_files()  # none while quarantined (PEP 792), as on the index pages
    if page.status != "active":
        reason = f": {page.status_reason}" if page.status_reason else ""
        body.append(f'<p class="muted">This project is {escape(page.status + reason)}.</p>')
    if page.namespaces:  # PEP 752: the innermost namespace says whose name this is
        inner = page.namespaces[-1]
        owner = f", owned by {escape(inner.owner)}" if inner.owner else ""
        older = "" if inner.owned else " (this project predates it)"
        body.append(f'<p class="muted">In the namespace {escape(inner.name)}{owner}{older}.</p>')
    if not listed:
        body.append('<p class="muted">This project has no files.</p>')
    by_version: dict[str, list[FileEntry]] = {}
    for f in listed:
        by_version.setdefault(f.version, []).append(f)
    newest_first = [v for v in page.versions()[::-1] if v in by_version]
    if by_version:
        body.append("<h2>Versions</h2>")
        body.append(
            '<p class="versions">'
            + ", ".join(_version_link(v, by_version[v]) for v in newest_first)
            + "</p>"
        )
    if shown and shown.description_html:
        body += ['<div class="description">', shown.description_html, "</div>"]
    for version in newest_first:
        body += _release_rows(version, tuple(by_version[version]))
    sidebar = _sidebar(shown)
    main = ['<div class="cols"><main>', *body[head:], "</main>", *sidebar, "</div>"]
    return _document(f"{page.display_name} - skypi", "../../", page.serial, body[:head] + main)


def _version_link(version: str, files: list[FileEntry]) -> str:
    """A version in the versions line; a release whose every file is yanked is marked."""
    label = escape(version)
    if all(f.yanked is not None for f in files):
        reason = escape(files[0].yanked or "no reason given", quote=True)
        return (
            f'<a href="#v{label}" class="yanked" title="yanked: {reason}">{label}</a> '
            '<span class="badge">yanked</span>'
        )
    return f'<a href="#v{label}">{label}</a>'


def _sidebar(release: Release | None) -> list[str]:
    """PyPI's sidebar: links, license, people, Requires-Python, keywords, classifiers."""
    if release is None:
        return []
    rows: list[str] = []
    if release.links:
        rows.append("<h2>Links</h2><ul>")
        rows += [
            f'<li><a href="{escape(url, quote=True)}" rel="nofollow noopener noreferrer">'
            f"{escape(label)}</a></li>"
            for label, url in release.links
        ]
        rows.append("</ul>")
    facts = [
        ("License", release.license),
        ("Author", release.author),
        ("Maintainer", release.maintainer),
        ("Requires-Python", release.requires_python),
        ("Keywords", ", ".join(release.keywords)),
    ]
    shown = [(name, value) for name, value in facts if value]
    if shown:
        rows.append("<h2>Meta</h2><dl>")
        rows += [f"<dt>{name}</dt><dd>{escape(value)}</dd>" for name, value in shown]
        rows.append("</dl>")
    if release.classifiers:
        rows.append('<h2>Classifiers</h2><ul class="classifiers">')
        rows += [f"<li>{escape(c)}</li>" for c in release.classifiers]
        rows.append("</ul>")
    return ['<aside class="meta">', *rows, "</aside>"] if rows else []


__all__ = [
    "LANDING_KEY",
    "LEGACY_SITE_JSON_KEY",
    "SITE_PREFIX",
    "Address",
    "Release",
    "SiteSummary",
    "Upload",
    "fill_address",
    "latest_version",
    "near_names",
    "project_site_key",
    "release_key",
    "render_description",
    "render_landing",
    "render_not_found",
    "render_project_site",
    "search_box",
    "wants_page",
]
