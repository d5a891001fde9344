"""What a request under ``/view/<name>/`` means: the edge rules of ``/simple/`` and
``/packages/``, applied under a view's prefix.

A view's URL space mirrors the index's: ``/view/<name>/simple/...`` is negotiated exactly as
``/simple/...`` (the same :func:`~skypi.core.edge.decide`), and its answer's key is moved
under the view's keys; ``/view/<name>/files/<project>/<file>`` is an upstream file the view
cached (the links of its pages), and ``/view/<name>/packages/...`` a private file (the links
of a private project's page, served to the view as it is). ``/view/<name>@<date>/`` is the
view's time-pinned form: the same, with its pages made for each request (any date may be
asked for: they are not stored) and its files the view's.

>>> decide_view("GET", "/view/safe/simple/Foo/", "").answer.location
'/view/safe/simple/foo/'
>>> json = "application/vnd.pypi.simple.v1+json"
>>> found = decide_view("GET", "/view/safe/simple/foo/", "", accept=json)
>>> found.kind, found.answer.key, found.project
('page', 'views/safe/simple/foo/index.json', 'foo')
>>> found = decide_view("GET", "/view/safe/files/foo/foo-1.0.tar.gz", "")
>>> found.kind, found.answer.key, found.project, found.filename
('file', 'views/safe/files/foo/foo-1.0.tar.gz', 'foo', 'foo-1.0.tar.gz')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Final, Literal
from urllib.parse import quote, unquote_to_bytes

from skypi.core.constants import VIEW_PREFIX
from skypi.core.edge import Answer, decide, decode_path
from skypi.core.keys import (
    NAMESPACES_PREFIX,
    PACKAGES_PREFIX,
    PROJECT_PAGE,
    ROOT_LISTING,
    SIMPLE_PREFIX,
    VIEW_FILE,
    VIEW_FILES,
    VIEW_MADE_PREFIX,
    VIEW_PAGE,
    VIEWS_PREFIX,
    recognise,
    view_key,
    view_made_key,
)
from skypi.core.negotiate import HTML, V1_HTML, V1_JSON

ViewKind = Literal["root", "page", "file", "private-file", "none"]
_NAME: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_NAME: Final = 64
_PIN: Final = re.compile(r"\d{4}-\d\d-\d\d", re.ASCII)


@dataclass(frozen=True)
class ViewRequest:
    """A request under a view: which view, what kind of object, and the answer the edge rules
    give it (its key already the view's, its redirect under the view's prefix)."""

    view: str
    kind: ViewKind
    answer: Answer
    project: str | None = None
    filename: str | None = None
    pin: str | None = None  # the time-pinned form's date (``/view/<name>@<date>/``)
    private_key: str | None = None  # a page's: the private page's object, for a private name


def decide_view(
    method: str,
    raw_path: str,
    raw_query: str,
    accept: str | None = None,
    accept_encoding: str | None = None,
) -> ViewRequest:
    """Map a read under ``/view/`` to its answer (a ``none`` kind is a 404 or an error)."""
    rest = raw_path[len(VIEW_PREFIX) :]
    segment, _, inner = rest.partition("/")
    view, at, pin = segment.partition("@")
    if len(view) > _MAX_NAME or not _NAME.fullmatch(view) or (at and not valid_pin(pin)):
        return ViewRequest(view, "none", Answer(404, project=""))
    found = _inner(view, pin or None, method, inner, raw_query, accept, accept_encoding)
    return replace(found, pin=pin or None)


def valid_pin(pin: str) -> bool:
    """A pin is a date, ``YYYY-MM-DD``, that is one.

    >>> valid_pin("2026-11-01"), valid_pin("2026-02-30"), valid_pin("2026-1-1")
    (True, False, False)
    """
    if not _PIN.fullmatch(pin):
        return False
    try:
        date.fromisoformat(pin)
    except ValueError:
        return False
    return True


def _inner(
    view: str,
    pin: str | None,
    method: str,
    inner: str,
    raw_query: str,
    accept: str | None,
    accept_encoding: str | None,
) -> ViewRequest:
    """The request under ``/view/<name>[@<date>]``: its ``inner`` path, without its slash."""
    base = f"{VIEW_PREFIX}{view}{'@' + pin if pin else ''}"
    if inner in {"", "simple"}:  # the view's address alone: its root listing
        return ViewRequest(view, "none", Answer(301, location=f"{base}/simple/", project=None))
    inner = "/" + inner
    if inner.startswith("/files/"):
        return _file(view, method, inner, raw_query)
    answer = decide(method, inner, raw_query, accept, accept_encoding)
    if answer.location is not None:
        return ViewRequest(view, "none", replace(answer, location=f"{base}{answer.location}"))
    if answer.key is None or answer.status != 200:
        return ViewRequest(view, "none", answer)
    if answer.key.startswith(PACKAGES_PREFIX):
        return ViewRequest(view, "private-file", answer, answer.project)
    if not inner.startswith("/simple/") or answer.key.startswith(NAMESPACES_PREFIX):
        return ViewRequest(view, "none", Answer(404, project=""))
    kind: ViewKind = "root" if answer.project is None else "page"
    key = view_key(view, answer.key)  # a pinned form's pages are made for each request
    return ViewRequest(view, kind, replace(answer, key=key), answer.project, private_key=answer.key)


def _file(view: str, method: str, inner: str, raw_query: str) -> ViewRequest:
    """``/files/<project>/<filename>``: decided as ``/packages/...`` is (decoding, dot
    segments, what may be served as a file), then held to exactly a project's folder."""
    answer = decide(method, "/packages/" + inner[len("/files/") :], raw_query)
    if answer.status != 200 or answer.key is None:
        return ViewRequest(view, "none", answer)
    parts = answer.key[len(PACKAGES_PREFIX) :].split("/")
    if len(parts) != 2 or parts[0] != answer.project:
        return ViewRequest(view, "none", Answer(404, project=answer.project))
    key = view_key(view, f"{VIEW_FILES}/{parts[0]}/{parts[1]}")
    return ViewRequest(view, "file", replace(answer, key=key), parts[0], parts[1])


def view_origin_key(found: ViewRequest) -> str | None:
    """The key CloudFront's view function sends a read to (the bucket first, then the view
    Lambda when the bucket has no such object): a stored page or file of the view, a private
    file as it is, and what the view makes for each request (its root listing, a pinned page)
    under :data:`~skypi.core.keys.VIEW_MADE_PREFIX`, where nothing is stored. None when the
    answer is no object (a redirect, a refusal).

    >>> json = "application/vnd.pypi.simple.v1+json"
    >>> view_origin_key(decide_view("GET", "/view/safe/simple/", "", accept=json))
    'view/safe/simple/index.json'
    >>> view_origin_key(decide_view("GET", "/view/safe@2026-11-01/simple/foo/", "", "", "gzip"))
    'view/safe@2026-11-01/simple/foo/index.html.gz'
    >>> view_origin_key(decide_view("GET", "/view/safe/simple/foo/", ""))
    'views/safe/simple/foo/index.html'
    """
    answer = found.answer
    if answer.status != 200 or answer.key is None or found.kind == "none":
        return None
    if found.kind == "root":
        return view_made_key(found.view, None, found.private_key or "")
    if found.kind == "page" and found.pin is not None:
        return view_made_key(found.view, found.pin, found.private_key or "")
    return answer.key


# The type a request must accept to be given each stored representation (the origin URI names it).
_ACCEPT: Final = {"index.json": V1_JSON, "index.html": HTML, "index.v1html": V1_HTML}
_SEGMENT: Final = re.compile(r"[A-Za-z0-9._@+!~-]+", re.ASCII)  # a decoded key segment


@dataclass(frozen=True)
class ViewerRequest:
    """The viewer's request an origin URI stands for: the path under ``/view/`` and the
    ``Accept`` and ``Accept-Encoding`` that select the same stored representation."""

    path: str
    accept: str
    accept_encoding: str


def from_origin_uri(raw_path: str) -> ViewerRequest | None:
    """What the view's edge function sent to the origin group (the bucket, then the view
    function), as the viewer's request; None for anything the function does not serve.

    A view's stored pages and files arrive as their keys
    (``/views/<view>/simple/<p>/index.json.gz``, ``/views/<view>/files/<p>/<file>``); a view's
    root and a time-pinned page, which are made for each request, under ``/view/``
    (``/view/<view>/simple/index.html``, ``/view/<view>@<date>/simple/<p>/index.v1html``),
    where no object is stored. Each segment is decoded once; a segment that decodes to a
    slash, a percent sign or anything a key segment never holds is refused.

    >>> found = from_origin_uri("/views/safe/simple/foo/index.json.gz")
    >>> found.path, found.accept, found.accept_encoding
    ('/view/safe/simple/foo/', 'application/vnd.pypi.simple.v1+json', 'gzip')
    >>> from_origin_uri("/view/safe%402026-11-01/simple/index.html").path
    '/view/safe@2026-11-01/simple/'
    >>> from_origin_uri("/views/safe/files/foo/foo-1.0%2Bcpu.tar.gz").path
    '/view/safe/files/foo/foo-1.0%2Bcpu.tar.gz'
    >>> [from_origin_uri(p) for p in ("/views/safe/files/foo%2F..%2Fx/y",
    ...  "/views/safe/policy.json", "/views/safe/simple/index.json",
    ...  "/packages/foo/foo-1.0.tar.gz", "/views/safe/simple/foo/")]
    [None, None, None, None, None]
    """
    segments = _decoded(raw_path)
    if segments is None or len(segments) < 3:
        return None
    if segments[0] == VIEWS_PREFIX.rstrip("/"):  # a stored page or file of a view
        found = recognise("/".join(segments))
        if found is None or found.family not in (VIEW_PAGE, VIEW_FILE):
            return None
        if found.family is VIEW_FILE:
            path = f"{VIEW_PREFIX}{segments[1]}/{VIEW_FILES}/{found.project}/{quote(found.name)}"
            return ViewerRequest(path, "*/*", "identity")
        page = f"{SIMPLE_PREFIX}{found.project}/"
        return _page(segments[1], page, found.name, found.gzipped)
    if segments[0] != VIEW_MADE_PREFIX.rstrip("/"):  # made for each request
        return None
    view, at, pin = segments[1].partition("@")
    if not _NAME.fullmatch(view) or len(view) > _MAX_NAME or (at and not valid_pin(pin)):
        return None
    found = recognise("/".join(segments[2:]))
    if found is None or found.family not in (PROJECT_PAGE, ROOT_LISTING):
        return None
    page = SIMPLE_PREFIX + (f"{found.project}/" if found.project else "")
    return _page(segments[1], page, found.name, found.gzipped)


def _page(segment: str, page: str, name: str, gzipped: bool) -> ViewerRequest:
    encoding = "gzip" if gzipped else "identity"
    return ViewerRequest(f"{VIEW_PREFIX}{segment}/{page}", _ACCEPT[name], encoding)


def _decoded(raw_path: str) -> list[str] | None:
    """The path's segments (after its leading slash), each decoded once, or None."""
    if not raw_path.startswith("/"):
        return None
    segments = []
    for raw in raw_path[1:].split("/"):
        try:
            text = unquote_to_bytes(raw).decode("ascii")
        except UnicodeDecodeError:
            return None
        if not _SEGMENT.fullmatch(text) or text in {".", ".."}:
            return None
        segments.append(text)
    return segments


__all__ = [
    "ViewRequest",
    "ViewerRequest",
    "decide_view",
    "decode_path",
    "from_origin_uri",
    "view_origin_key",
]
