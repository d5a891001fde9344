"""The edge rules: what a read request means, decided without touching storage.

CloudFront's viewer-request function and the Python read routes implement these same rules and
are both tested against ``spec/edge-vectors.json``.

>>> decide("GET", "/simple/Foo_Bar", "").location
'/simple/foo-bar/'
>>> decide("GET", "/simple/foo/", "", accept="application/vnd.pypi.simple.v1+json").key
'simple/foo/index.json'
>>> decide("GET", "/simple/foo/", "", accept_encoding="gzip, br").key
'simple/foo/index.html.gz'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from packaging.utils import NormalizedName, canonicalize_name

from skypi.core.filenames import SDIST_EXTENSIONS, VALID_PROJECT_NAME
from skypi.core.http import GZIP, HTML_CONTENT_TYPE, accepts_gzip, gzip_key
from skypi.core.negotiate import HTML, V1_HTML, V1_JSON, choose_content_type
from skypi.core.site import LANDING_KEY, project_site_key

READ_METHODS: Final = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Decision:
    """What to answer: a redirect (``location``), an object (``key``), or a bare status."""

    status: int
    key: str | None = None
    location: str | None = None
    content_type: str | None = None  # set for negotiated pages
    negotiated: bool = False  # the answer depends on Accept and Accept-Encoding (send Vary)
    content_encoding: str | None = None  # ``gzip``: the key is a page's compressed variant


NOT_FOUND: Final = Decision(404)


_PAGE_OBJECT: Final = {V1_JSON: "index.json", V1_HTML: "index.v1html", HTML: "index.html"}


def _page(prefix: str, content_type: str, gzipped: bool) -> Decision:
    """One stored object per representation and encoding, so a static origin needs no header
    rewriting."""
    shown = {HTML: "text/html; charset=utf-8"}.get(content_type, content_type)
    key = f"{prefix}{_PAGE_OBJECT[content_type]}"
    if gzipped:
        return Decision(
            200, key=gzip_key(key), content_type=shown, negotiated=True, content_encoding=GZIP
        )
    return Decision(200, key=key, content_type=shown, negotiated=True)


def _with_query(location: str, raw_query: str) -> str:
    return f"{location}?{raw_query}" if raw_query else location


def _safe_package_key(rest: str) -> str | None:
    parts = unquote(rest).split("/")
    if any(not p or p.startswith(".") for p in parts):
        return None  # no traversal, no dot-files, no directory listings
    return "packages/" + "/".join(parts)


def project_of_filename(filename: str) -> str:
    """The project a distribution filename names, by the same plain rule the CloudFront Function
    uses (the wheel's first dash-field; an sdist's name before its last dash); "" if none.

    >>> project_of_filename("Foo_Bar-1.0-py3-none-any.whl.metadata"), project_of_filename("x")
    ('foo-bar', '')
    """
    filename = filename.removesuffix(".metadata")
    if filename.endswith(".whl"):
        name = filename.split("-", 1)[0]
    else:
        stem = next((filename[: -len(e)] for e in SDIST_EXTENSIONS if filename.endswith(e)), "")
        name = stem.rsplit("-", 1)[0] if "-" in stem else ""
    return canonicalize_name(name) if VALID_PROJECT_NAME.match(name) else ""


def _project_name(rest: str, prefix: str, raw_query: str) -> Decision | NormalizedName:
    """``/simple/<name>/`` and ``/project/<name>/``: the normalized name, or the answer."""
    name = unquote(rest[:-1] if rest.endswith("/") else rest)
    if "/" in name or not VALID_PROJECT_NAME.match(name):
        return NOT_FOUND
    normalized = canonicalize_name(name)
    if name != normalized or not rest.endswith("/"):
        return Decision(301, location=_with_query(f"{prefix}{normalized}/", raw_query))
    return normalized


def is_people_path(path: str) -> bool:
    """The pages for people (skypi.core.site): ``/`` and ``/project/<name>/``."""
    return path == "/" or path.startswith("/project/")


def read_project(path: str) -> str | None:
    """Which project a read is about, for project-limited tokens: None for the root listing
    (any read token may list), "" when it names none (only unlimited tokens may read it).

    >>> read_project("/simple/Foo.Bar/"), read_project("/simple/"), read_project("/packages/a/b")
    ('foo-bar', None, '')
    """
    if path in {"/simple", "/simple/", "/"}:
        return None
    if path.startswith(("/simple/", "/project/")):
        name = unquote(path.split("/", 2)[2].rstrip("/"))
        return canonicalize_name(name) if VALID_PROJECT_NAME.match(name) else ""
    return project_of_filename(unquote(path.rsplit("/", 1)[-1]))


def decide(
    method: str,
    path: str,
    raw_query: str,
    accept: str | None = None,
    accept_encoding: str | None = None,
) -> Decision:
    """Map a read request to its answer. ``path`` is the raw (percent-encoded) URL path."""
    is_read_path = path == "/simple" or path.startswith(("/simple/", "/packages/"))
    if not is_read_path and not is_people_path(path):
        return NOT_FOUND
    if method.upper() not in READ_METHODS:
        return Decision(405)
    if path == "/":
        return Decision(200, key=LANDING_KEY, content_type=HTML_CONTENT_TYPE)
    if path.startswith("/project/"):
        named = _project_name(path[len("/project/") :], "/project/", raw_query)
        if isinstance(named, Decision):
            return named
        return Decision(200, key=project_site_key(named), content_type=HTML_CONTENT_TYPE)
    if path == "/simple":
        return Decision(301, location=_with_query("/simple/", raw_query))
    if path.startswith("/packages/"):
        key = _safe_package_key(path[len("/packages/") :])
        return Decision(200, key=key) if key else NOT_FOUND
    rest = path[len("/simple/") :]
    gzipped = accepts_gzip(accept_encoding)
    if rest == "":
        return _page("simple/", choose_content_type(accept, raw_query), gzipped)
    named = _project_name(rest, "/simple/", raw_query)
    if isinstance(named, Decision):
        return named
    return _page(f"simple/{named}/", choose_content_type(accept, raw_query), gzipped)


__all__ = ["NOT_FOUND", "READ_METHODS", "V1_HTML", "Decision", "decide", "read_project"]
