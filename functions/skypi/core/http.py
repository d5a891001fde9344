"""The HTTP facts of each stored object: its Content-Type and Cache-Control, one rule each."""

from __future__ import annotations

from typing import Final

from skypi.core.negotiate import HTML, V1_HTML, V1_JSON

HTML_CONTENT_TYPE: Final = f"{HTML}; charset=utf-8"
BINARY: Final = "application/octet-stream"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# Pages change on every upload. Clients revalidate every time (max-age=0, cheap with ETag and
# 304); a shared cache (CloudFront) may answer from its copy for PAGE_EDGE_SECONDS (s-maxage),
# so a burst of reads costs one origin request per page per edge every two seconds instead of
# one per read, and an upload is visible at every edge within that time.
PAGE_EDGE_SECONDS: Final = 2
REVALIDATE: Final = f"public, max-age=0, s-maxage={PAGE_EDGE_SECONDS}"


# AWS Lambda caps a synchronous invocation's request and response at 6 MB (6,291,456 bytes);
# API Gateway wraps a binary body in base64 (4/3) beside headers and context (docs/aws-runtime.md).
LAMBDA_PAYLOAD_LIMIT: Final = 6_291_456
MAX_LAMBDA_REQUEST_BYTES: Final = 4_700_000  # the largest upload request the API accepts
MAX_LAMBDA_RESPONSE_BYTES: Final = 4 * 1024 * 1024  # larger objects: presigned redirect


def content_type_for_key(key: str) -> str:
    """The exact, lowercase type pip and uv accept for each stored object.

    >>> content_type_for_key("simple/foo/index.json")
    'application/vnd.pypi.simple.v1+json'
    """
    if key.endswith(".json") and key.startswith("simple/"):
        return V1_JSON
    if key.endswith(".html"):
        return HTML_CONTENT_TYPE
    if key.endswith(".v1html") and key.startswith("simple/"):
        return V1_HTML
    return BINARY


def cache_control_for_key(key: str) -> str:
    return REVALIDATE if key.startswith("simple/") else IMMUTABLE
