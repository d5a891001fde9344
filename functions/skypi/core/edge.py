"""The edge rules: what a request means, decided without touching storage.

CloudFront's viewer-request function and the Python read routes implement these same rules and
are both tested against ``spec/edge-vectors.json`` and against each other (generated requests).

Three steps, in this order, the same on both edges:

1. :func:`route` sends a request to the API, to the read path, or nowhere, by its *raw* path:
   the way CloudFront's behaviours match it, so no spelling of a path moves it between them.
2. A read's path is decoded once, strictly (:func:`decode_path`): a malformed escape, bytes that
   are not UTF-8, a control character (``%00``) or a ``%`` left after decoding is a 400.
3. Every later rule (the project a read is about, the object key, the name redirect) looks at
   the decoded path only, split at its slashes, so ``%2F`` is a slash like any other.

>>> decide("GET", "/simple/Foo_Bar", "").location
'/simple/foo-bar/'
>>> decide("GET", "/simple/foo/", "", accept="application/vnd.pypi.simple.v1+json").key
'simple/foo/index.json'
>>> decide("GET", "/simple/foo/", "", accept_encoding="gzip, br").key
'simple/foo/index.html.gz'
>>> decide("GET", "/packages/foo-bar%2Ffoo_bar-1.0-py3-none-any.whl", "").project
'foo-bar'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote, unquote_to_bytes

from packaging.utils import InvalidName, NormalizedName, canonicalize_name

from skypi.core.constants import API_PATHS as API_PATHS
from skypi.core.constants import API_POSTS as API_POSTS
from skypi.core.constants import API_PREFIXES as API_PREFIXES
from skypi.core.constants import HEALTH_PATH
from skypi.core.constants import READ_PATHS as READ_PATHS
from skypi.core.constants import READ_PREFIXES as READ_PREFIXES
from skypi.core.filenames import SDIST_EXTENSIONS
from skypi.core.http import GZIP, HTML_CONTENT_TYPE, accepts_gzip
from skypi.core.keys import (
    LANDING_KEY,
    METADATA_SUFFIX,
    PACKAGES_PREFIX,
    PageKind,
    gzip_key,
    namespace_key,
    page_key,
    project_site_key,
)
from skypi.core.negotiate import HTML, V1_HTML, V1_JSON, choose_content_type
from skypi.core.pages import file_href

READ_METHODS: Final = frozenset({"GET", "HEAD"})  # methods are case-sensitive (RFC 9110 9.1)
# What may reach the API, and what may reach storage: the table is skypi.core.constants's.
Route = Literal["api", "read", "none"]

_PRINTABLE_ASCII: Final = re.compile(r"[!-~]*")  # a request target as clients send it
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NOT_IN_A_NAME: Final = re.compile(r"[\x00-\x1f\x7f-\x9f%\\]")


@dataclass(frozen=True)
class Answer:
    """What to answer: a redirect (``location``), an object (``key``), or a bare status.

    ``project`` is what a project-limited token must cover: None for the root listing (any read
    token), "" when the path names no project (only unlimited tokens). ``authenticate`` is
    False for answers given before credentials are looked at (405, 400).
    """

    status: int
    key: str | None = None
    location: str | None = None
    content_type: str | None = None  # set for negotiated pages
    negotiated: bool = False  # the answer depends on Accept and Accept-Encoding (send Vary)
    content_encoding: str | None = None  # ``gzip``: the key is a page's compressed variant
    project: str | None = None
    authenticate: bool = True
    reason: str = ""  # for a 400: what is wrong with the request


NOT_FOUND: Final = Answer(404, project="")
# A request with more than one Authorization header: which one counts differs from one server
# (or framework) to the next, so no route takes it, at either edge (CloudFront Functions see
# the repeats as the header's ``multiValue``).
AUTHORIZATION_TWICE: Final = Answer(
    400,
    authenticate=False,
    reason="Bad Request: send one Authorization header, not several.",
)


def authorization_refusal(count: int) -> Answer | None:
    """The answer to a request carrying ``count`` Authorization headers, on any route: None
    when it may go on (none or one).

    >>> authorization_refusal(1) is None, authorization_refusal(2).status
    (True, 400)
    """
    return AUTHORIZATION_TWICE if count > 1 else None


def authorization_count(values: Iterable[str]) -> int:
    """How many Authorization headers the received ``values`` stand for. API Gateway's HTTP
    API (payload format 2.0) joins a repeated header's values with commas into one value,
    and no credential this index takes can hold a comma (Basic's token68, RFC 7617; Bearer's
    b64token, RFC 6750: letters, digits, ``-._~+/`` and trailing ``=``), so each comma is
    one more header.

    >>> authorization_count([]), authorization_count(["Basic YTpi"])
    (0, 1)
    >>> authorization_count(["Basic YTpi,Basic Yzpk"]), authorization_count(["Basic a", "Basic b"])
    (2, 2)
    """
    return sum(1 + value.count(",") for value in values)


_PAGE_KIND: Final[dict[str, PageKind]] = {V1_JSON: "json", V1_HTML: "v1html", HTML: "html"}
# PEP 752's endpoints, under the repository's base as PEP 691's pages are. Without its slash,
# /simple/namespaces is the list (a project of that name is /simple/namespaces/, slash and
# all); /simple/namespace/<name> is a namespace (the project "namespace" is
# /simple/namespace/). Both are JSON only, whatever Accept asks for.
NAMESPACE_LIST_PATH: Final = "/simple/namespaces"
NAMESPACE_PATH: Final = "/simple/namespace/"


def route(method: str, raw_path: str, health_path: str = HEALTH_PATH) -> Route:
    """Where a request goes, by its raw (still percent-encoded) path.

    >>> route("POST", "/"), route("GET", "/"), route("GET", "/%73imple/"), route("GET", "/healthz")
    ('api', 'read', 'none', 'none')
    """
    if (
        raw_path in API_PATHS
        or raw_path == health_path
        or raw_path.startswith(API_PREFIXES)
        or (method == "POST" and raw_path in API_POSTS)
    ):
        return "api"
    if raw_path in READ_PATHS or raw_path.startswith(READ_PREFIXES):
        return "read"
    return "none"


def decode_path(raw_path: str) -> str | None:
    """The path as text, decoded once; None when it cannot be one (answered with 400).

    >>> decode_path("/packages/a%2Fb"), decode_path("/packages/%zz"), decode_path("/x%00")
    ('/packages/a/b', None, None)
    >>> decode_path("/packages/%252e%252e") is None  # double encoding
    True
    """
    if not _PRINTABLE_ASCII.fullmatch(raw_path) or _BAD_ESCAPE.search(raw_path):
        return None
    try:
        text = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _NOT_IN_A_NAME.search(text) else text


def project_name(text: str) -> NormalizedName | None:
    """The normalized project name ``text`` spells, or None: PEP 508 names are ASCII only, so
    look-alikes (``\\u017fix``, the Kelvin sign) name no project.

    >>> project_name("Foo.Bar"), project_name("\\u017fix"), project_name("-x")
    ('foo-bar', None, None)
    """
    if not text.isascii():
        return None
    try:
        return canonicalize_name(text, validate=True)
    except InvalidName:
        return None


def project_of_filename(filename: str) -> str:
    """The project a distribution filename names, by the same plain rule the CloudFront Function
    uses (the wheel's first dash-field; an sdist's name before its last dash); "" if none.

    >>> project_of_filename("Foo_Bar-1.0-py3-none-any.whl.metadata"), project_of_filename("x")
    ('foo-bar', '')
    """
    filename = filename.removesuffix(METADATA_SUFFIX)
    if filename.endswith(".whl"):
        name = filename.split("-", 1)[0]
    else:
        stem = next((filename[: -len(e)] for e in SDIST_EXTENSIONS if filename.endswith(e)), "")
        name = stem.rsplit("-", 1)[0] if "-" in stem else ""
    return project_name(name) or ""


def served_as_file(filename: str) -> bool:
    """Whether a file under ``/packages/`` may be served: a distribution's name (a wheel or
    an sdist, by its extension) or its ``.metadata``; never a page, script or image.

    >>> served_as_file("a-1.0.tar.gz.metadata"), served_as_file("evil.html")
    (True, False)
    """
    return filename.removesuffix(METADATA_SUFFIX).endswith((".whl", *SDIST_EXTENSIONS))


def read_project(path: str) -> str | None:
    """Which project a read of the *decoded* ``path`` is about: None for the root listing,
    "" when it names none. A file's project is its filename's: the last decoded segment.

    >>> read_project("/simple/Foo.Bar/"), read_project("/simple/"), read_project("/packages/a/b")
    ('foo-bar', None, '')
    """
    if path in {"/simple", "/simple/", "/"} or _namespace_path(path):
        return None  # the whole index's: any read token
    for prefix in ("/simple/", "/project/"):
        if path.startswith(prefix):
            return project_name(path[len(prefix) :].removesuffix("/")) or ""
    return project_of_filename(path.rsplit("/", 1)[-1])


def _namespace_path(path: str) -> bool:
    """Whether the decoded ``path`` is one of PEP 752's namespace endpoints.

    >>> [_namespace_path(p) for p in ("/simple/namespaces", "/simple/namespaces/")]
    [True, False]
    >>> [_namespace_path(p) for p in ("/simple/namespace/acme", "/simple/namespace/")]
    [True, False]
    """
    return path == NAMESPACE_LIST_PATH or (
        path.startswith(NAMESPACE_PATH) and path != NAMESPACE_PATH
    )


def _namespace(path: str, raw_query: str) -> Answer:
    """``/simple/namespaces`` and ``/simple/namespace/<name>``: the stored JSON document, a
    redirect to the normalized name, or a 404 (a name that is none, a nested path)."""
    if path == NAMESPACE_LIST_PATH:
        return Answer(200, key=namespace_key(None), content_type=V1_JSON)
    name = path[len(NAMESPACE_PATH) :]
    normalized = project_name(name)
    if normalized is None:
        return Answer(404)
    if normalized != name:
        return _redirect(f"{NAMESPACE_PATH}{normalized}", raw_query, None)
    return Answer(200, key=namespace_key(normalized), content_type=V1_JSON)


def link_path(file_key: str) -> str | None:
    """The URL path a client asks for when it follows a page's link to ``file_key`` (the
    relative href resolved against ``/simple/<project>/``), or None when resolving it would
    change the key (a ``.`` or ``..`` segment, which every client collapses first).

    >>> link_path("packages/foo/foo-1.0+cpu-py3-none-any.whl")
    '/packages/foo/foo-1.0%2Bcpu-py3-none-any.whl'
    >>> link_path("packages/../packages/./x-1.0.tar.gz") is None
    True
    """
    if any(part in {".", ".."} for part in file_key.split("/")):
        return None
    return "/" + file_href(file_key).removeprefix("../../")


def serves_key(file_key: str) -> bool:
    """Whether the page's link to ``file_key`` is read back, by these rules, as that very key:
    what the index lists must round-trip through its own read rules (a key with a literal
    ``%`` is linked as ``%25..``, which is refused as a double encoding; a dot segment or a
    dot-file is never served).

    >>> serves_key("packages/foo/foo-1.0.tar.gz"), serves_key("packages/x%2Fy/x-1.0.tar.gz")
    (True, False)
    """
    path = link_path(file_key)
    if path is None:
        return False
    answer = decide("GET", path, "")
    return answer.status == 200 and answer.key == file_key


def origin_uri(key: str) -> str:
    """The one URI a read of ``key`` is sent to the bucket with, whatever spelling the viewer
    used: each segment percent-encoded except ``A-Z a-z 0-9 - . _`` (uppercase hex).

    The CloudFront Function sets it before CloudFront looks in its cache, so it is the cache
    key and the exact path an invalidation names (docs/deploy.md); no character in it is one
    an invalidation path must encode or may not (``~``, ``+``, ``*``: all escaped).

    >>> origin_uri("packages/foo/foo-1.0+cpu-py3-none-any.whl")
    '/packages/foo/foo-1.0%2Bcpu-py3-none-any.whl'
    >>> origin_uri("packages/a b/caf\u00e9~*!.tar.gz")
    '/packages/a%20b/caf%C3%A9%7E%2A%21.tar.gz'
    """
    return "/" + "/".join(quote(part, safe="").replace("~", "%7E") for part in key.split("/"))


def redirect_query(raw_query: str) -> str:
    """What a redirect keeps of the query: ``?format=`` (its first value, as sent), nothing else.

    >>> redirect_query("x=1&format=text/html&format=b"), redirect_query("x=1")
    ('format=text/html', '')
    """
    for part in raw_query.split("&"):
        name, _, value = part.partition("=")
        if name == "format":
            return f"format={value}"
    return ""


def _redirect(location: str, raw_query: str, project: str | None) -> Answer:
    query = redirect_query(raw_query)
    return Answer(301, location=f"{location}?{query}" if query else location, project=project)


def _page(
    named: NormalizedName | None, content_type: str, gzipped: bool, project: str | None
) -> Answer:
    """One stored object per representation and encoding, so a static origin needs no header
    rewriting. ``named``: the project whose page it is; None for the root listing."""
    shown = {HTML: "text/html; charset=utf-8"}.get(content_type, content_type)
    key = page_key(named, _PAGE_KIND[content_type])
    if gzipped:
        return Answer(
            200,
            key=gzip_key(key),
            content_type=shown,
            negotiated=True,
            content_encoding=GZIP,
            project=project,
        )
    return Answer(200, key=key, content_type=shown, negotiated=True, project=project)


def decide(
    method: str,
    path: str,
    raw_query: str,
    accept: str | None = None,
    accept_encoding: str | None = None,
    authorizations: int = 0,
) -> Answer:
    """Map a read request to its answer. ``path`` is the raw (percent-encoded) URL path;
    ``authorizations`` how many Authorization headers it carries."""
    if refusal := authorization_refusal(authorizations):
        return refusal
    if route(method, path) != "read":
        return NOT_FOUND
    if method not in READ_METHODS:
        return Answer(405, authenticate=False)
    decoded = decode_path(path)
    if decoded is None:
        return Answer(
            400,
            authenticate=False,
            reason="Bad Request: the path has a malformed or double percent-encoding, "
            "bytes that are not UTF-8, or a control character.",
        )
    project = read_project(decoded)
    if decoded == "/":
        return Answer(200, key=LANDING_KEY, content_type=HTML_CONTENT_TYPE, project=project)
    if decoded == "/project/":  # the search box's form, without JavaScript
        return _search(raw_query, project)
    if decoded.startswith("/project/"):
        named = _named(decoded[len("/project/") :], "/project/", raw_query, project)
        if isinstance(named, Answer):
            return named
        return Answer(
            200, key=project_site_key(named), content_type=HTML_CONTENT_TYPE, project=project
        )
    if decoded == "/simple":
        return _redirect("/simple/", raw_query, project)
    if decoded.startswith("/packages/"):
        parts = decoded[len("/packages/") :].split("/")
        if any(not p or p.startswith(".") for p in parts):
            return Answer(404, project=project)  # no traversal, dot-files or listings
        if not served_as_file(parts[-1]):  # nothing else put there (a page, a script)
            return Answer(404, project=project)  # is served from the index's origin
        return Answer(200, key=PACKAGES_PREFIX + "/".join(parts), project=project)
    if _namespace_path(decoded):
        return _namespace(decoded, raw_query)
    rest = decoded[len("/simple/") :]
    gzipped = accepts_gzip(accept_encoding)
    if rest == "":
        return _page(None, choose_content_type(accept, raw_query), gzipped, project)
    named = _named(rest, "/simple/", raw_query, project)
    if isinstance(named, Answer):
        return named
    chosen = choose_content_type(accept, raw_query)
    return _page(named, chosen, gzipped, project)


def query_value(raw_query: str, name: str) -> str | None:
    """The first ``name=`` value of a raw query as a form sends it (``+`` is a space), decoded
    strictly as the edge function decodes it; None when absent or not decodable.

    >>> query_value("x=1&q=Foo+Bar%21&q=2", "q"), query_value("q=%zz", "q"), query_value("", "q")
    ('Foo Bar!', None, None)
    """
    for part in raw_query.split("&"):
        key, _, value = part.partition("=")
        if key == name:  # "q" alone is an empty value, as CloudFront reads it
            text = value.replace("+", "%20")
            if not text.isascii() or _BAD_ESCAPE.search(text):
                return None
            try:
                return unquote_to_bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _search(raw_query: str, project: str | None) -> Answer:
    """``/project/?q=NAME``: a redirect (302: a search, not a move) to the project page of
    the name typed, normalized; 404 when the name is no valid name.

    >>> decide("GET", "/project/", "q=+Foo_Bar+").location, decide("GET", "/project/", "").status
    ('/project/foo-bar/', 404)
    """
    typed = query_value(raw_query, "q")
    normalized = project_name(typed.strip(" \t")) if typed is not None else None
    if normalized is None:
        return Answer(404, project=project)
    return Answer(302, location=f"/project/{normalized}/", project=project)


def _named(rest: str, prefix: str, raw_query: str, project: str | None) -> Answer | NormalizedName:
    """``/simple/<name>/`` and ``/project/<name>/`` (decoded): the normalized name, or the
    answer (a 404, or the redirect to the normalized, slash-terminated path)."""
    name = rest.removesuffix("/")
    normalized = project_name(name)
    if normalized is None:  # nested paths too: a name has no slash
        return Answer(404, project=project)
    if name != normalized or not rest.endswith("/"):
        return _redirect(f"{prefix}{normalized}/", raw_query, project)
    return normalized


__all__ = [
    "API_PATHS",
    "API_POSTS",
    "API_PREFIXES",
    "AUTHORIZATION_TWICE",
    "NOT_FOUND",
    "READ_METHODS",
    "READ_PATHS",
    "READ_PREFIXES",
    "V1_HTML",
    "Answer",
    "authorization_count",
    "authorization_refusal",
    "decide",
    "decode_path",
    "origin_uri",
    "project_name",
    "query_value",
    "read_project",
    "route",
]
