"""Pages for people: the landing page at ``/``, a page per project at ``/project/<name>/``,
and the page a browser gets for a path that is not there (:func:`render_not_found`).

The first two are rendered when files change and stored like the index pages, so a static host
serves them (no code runs per request). Their links are relative. Their setup lines spell this
index's address where the renderer knows it (the deployed stack's, from its configuration);
otherwise they say ``INDEX_URL`` with a note on what it stands for, a server that knows its own
URL puts it in as it serves them (:func:`fill_address`), and failing that a small inline script
writes it from ``location``.

Their style and script are files of the package (``assets/site.css``, ``assets/site.js``), put
in every page as they are: the script's SHA-256 is in each page's Content-Security-Policy. What
a page shows comes from :mod:`skypi.core.landing` (the landing page's manifest) and
:mod:`skypi.core.release` (a release's description and sidebar).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from html import escape
from importlib.resources import files
from typing import Final
from urllib.parse import quote, urlsplit

from skypi.core.filenames import same_version
from skypi.core.landing import SiteSummary
from skypi.core.pages import FileEntry, ProjectPage, file_href, format_time
from skypi.core.release import Release, http_url, one_line

_ASSETS: Final = files("skypi.core") / "assets"
# Fills in this index's address from where the page was loaded, and runs the search box.
_SCRIPT: Final = "\n" + (_ASSETS / "site.js").read_text(encoding="utf-8")
_SCRIPT_HASH: Final = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
# Defence in depth behind the sanitizer: no script but ours, no plugins, no form sent elsewhere
# (the search box's form goes to this index).
_CSP: Final = (
    f"default-src 'self'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src * data:; object-src 'none'; base-uri 'none'; form-action 'self'"
)
_STYLE: Final = "\n" + (_ASSETS / "site.css").read_text(encoding="utf-8")
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
        if url is None or not http_url(url):
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
    return [*_install_setup(address), *_token_setup(address)]


def _install_setup(address: Address) -> list[str]:
    """Installing from this index and publishing to it, with each client's own settings."""
    U = address.u
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
    ]


def _token_setup(address: Address) -> list[str]:
    """The same with a token, kept out of the files one commits."""
    U, H, T, K = _spans(address)
    return [
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
        f"<p>Nothing here answers to <code>{escape(one_line(what, 300))}</code>.</p>",
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
    latest = page.latest_version
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
    "PLACEHOLDERS",
    "Address",
    "fill_address",
    "near_names",
    "render_landing",
    "render_not_found",
    "render_project_site",
    "search_box",
    "setup_sections",
    "wants_page",
]
