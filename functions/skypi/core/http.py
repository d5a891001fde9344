"""The HTTP facts of each stored object: its Content-Type, Content-Encoding and Cache-Control,
one rule each."""

from __future__ import annotations

import gzip
from typing import Final

from skypi.core.constants import MAX_LAMBDA_REQUEST_BYTES as MAX_LAMBDA_REQUEST_BYTES
from skypi.core.keys import GZIP_SUFFIX as GZIP_SUFFIX
from skypi.core.keys import LANDING, NAMESPACE_DOCUMENT, PROJECT_SITE, PageKind, recognise
from skypi.core.keys import gzip_key as gzip_key
from skypi.core.negotiate import HTML, Q_VALUE, V1_HTML, V1_JSON

HTML_CONTENT_TYPE: Final = f"{HTML}; charset=utf-8"
BINARY: Final = "application/octet-stream"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# Pages change on every upload. Clients revalidate every time (max-age=0, cheap with ETag and
# 304); a shared cache (CloudFront) may answer from its copy for PAGE_EDGE_SECONDS (s-maxage),
# so a burst of reads costs one origin request per page per edge every two seconds instead of
# one per read, and an upload is visible at every edge within that time.
PAGE_EDGE_SECONDS: Final = 2
REVALIDATE: Final = f"public, max-age=0, s-maxage={PAGE_EDGE_SECONDS}"
_PAGE_TYPES: Final[dict[PageKind, str]] = {
    "json": V1_JSON,
    "html": HTML_CONTENT_TYPE,
    "v1html": V1_HTML,
}


# AWS Lambda caps a synchronous invocation's request and response at 6 MB (6,291,456 bytes);
# API Gateway wraps a binary body in base64 (4/3) beside headers and context (docs/aws-runtime.md).
LAMBDA_PAYLOAD_LIMIT: Final = 6_291_456
MAX_LAMBDA_RESPONSE_BYTES: Final = 4 * 1024 * 1024  # larger objects: presigned redirect


# Every page object is stored twice more: gzip-compressed under ``<key>.gz``, with the page's
# Content-Type and ``Content-Encoding: gzip``. CloudFront compresses only the types on its list,
# and the PEP 691 types are not on it (docs/aws-runtime.md); a static origin can only send
# what is stored, so the edge picks the stored variant when the client accepts gzip.
GZIP: Final = "gzip"


def gzip_page(body: bytes) -> bytes:
    """A page's variant: the same bytes, gzip-compressed, byte-for-byte reproducible (no time
    in the header), so an unchanged page compresses to an unchanged variant."""
    return gzip.compress(body, compresslevel=6, mtime=0)


def content_encoding_for_key(key: str) -> str | None:
    """``gzip`` for a page's stored variant, else None (stored as it is sent).

    >>> content_encoding_for_key("simple/foo/index.json.gz"), content_encoding_for_key("x.gz")
    ('gzip', None)
    """
    found = recognise(key)
    return GZIP if found is not None and found.gzipped else None


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether a request's ``Accept-Encoding`` takes gzip: ``gzip`` (or ``x-gzip``) with q > 0,
    else ``*`` with q > 0. The first ``gzip`` entry decides; an unreadable q is 0. The
    CloudFront Function applies the same rule (spec/edge-vectors.json).

    >>> accepts_gzip("gzip, deflate, br"), accepts_gzip("br"), accepts_gzip("gzip;q=0, *")
    (True, False, False)
    """
    star = False
    for item in (accept_encoding or "").lower().split(","):
        coding, *params = (part.strip(" \t") for part in item.split(";"))  # OWS, as JS
        q = 1.0
        for param in params:
            if param.startswith("q="):
                value = param[2:]
                q = float(value) if Q_VALUE.fullmatch(value) else 0.0
        if coding in {"gzip", "x-gzip"}:
            return q > 0
        if coding == "*":
            star = q > 0
    return star


def content_type_for_key(key: str) -> str:
    """The exact, lowercase type pip and uv accept for each stored object, by its family: a
    page's objects (and their gzip variants) by their kind, the pages for people as HTML,
    everything else (files, ``.metadata``, records, keys outside the layout) as bytes.

    >>> content_type_for_key("simple/foo/index.json")
    'application/vnd.pypi.simple.v1+json'
    >>> content_type_for_key("simple/foo/index.json.gz")
    'application/vnd.pypi.simple.v1+json'
    >>> content_type_for_key("site/project/foo/index.html"), content_type_for_key("x/a.html")
    ('text/html; charset=utf-8', 'application/octet-stream')

    The namespace endpoints' documents (PEP 752 leaves their type open) are the JSON API's:

    >>> content_type_for_key("namespaces/acme/index.json")
    'application/vnd.pypi.simple.v1+json'
    """
    found = recognise(key)
    if found is None:
        return BINARY
    if found.page_kind is not None:
        return _PAGE_TYPES[found.page_kind]
    if found.family is NAMESPACE_DOCUMENT:
        return V1_JSON
    return HTML_CONTENT_TYPE if found.family in (LANDING, PROJECT_SITE) else BINARY


def cache_control_for_key(key: str) -> str:
    """Pages (and the pages for people) are rewritten in place: revalidated; a file never
    changes: immutable.

    >>> cache_control_for_key("site/index.html"), cache_control_for_key("packages/a/a-1.tar.gz")
    ('public, max-age=0, s-maxage=2', 'public, max-age=31536000, immutable')
    """
    found = recognise(key)
    return REVALIDATE if found is not None and found.family.revalidate else IMMUTABLE
