"""PEP 691 content negotiation, exactly as reference/standards.md §2.4 describes.

>>> choose_content_type("application/vnd.pypi.simple.v1+json, text/html;q=0.01", "")
'application/vnd.pypi.simple.v1+json'
>>> choose_content_type(None, "format=application/vnd.pypi.simple.v1+json")
'application/vnd.pypi.simple.v1+json'
>>> choose_content_type("*/*", "")
'text/html'
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote_to_bytes

HTML: Final = "text/html"
V1_HTML: Final = "application/vnd.pypi.simple.v1+html"
V1_JSON: Final = "application/vnd.pypi.simple.v1+json"
OFFERS: Final = (HTML, V1_HTML, V1_JSON)  # ties go to the earlier offer
_LATEST: Final = {
    "application/vnd.pypi.simple.latest+html": V1_HTML,
    "application/vnd.pypi.simple.latest+json": V1_JSON,
}
# Both edges strip the same characters, HTTP's optional whitespace (RFC 9110 5.6.3), not
# Python's or JavaScript's idea of whitespace, and read q-values with the same pattern.
OWS: Final = " \t"
Q_VALUE: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)


def _canonical(media: str) -> str:
    media = media.strip(OWS)
    media = media.lower() if media.isascii() else media  # no non-ASCII look-alikes
    return _LATEST.get(media, media)


def _unquote(text: str) -> str | None:
    """Percent-decoded UTF-8, or None for a malformed escape (as JavaScript's
    ``decodeURIComponent``, which throws)."""
    if not text.isascii() or re.search(r"%(?![0-9A-Fa-f]{2})", text):
        return None
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return None


def _parse_accept(header: str) -> list[tuple[str, float]] | None:
    """``[(media-range, q)]``, or None when the header cannot be parsed."""
    ranges: list[tuple[str, float]] = []
    for item in header.split(","):
        if not item.strip(OWS):
            continue
        media, *params = item.split(";")
        media = _canonical(media)
        if media.count("/") != 1 or " " in media:
            return None
        q = 1.0
        for param in params:
            key, _, value = param.strip(OWS).partition("=")
            if key.strip(OWS).lower() == "q":
                value = value.strip(OWS)
                if not Q_VALUE.fullmatch(value):
                    return None
                q = float(value)
                if not 0.0 <= q <= 1.0:
                    return None
        ranges.append((media, q))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float | None:
    """q of the most specific range matching ``offer`` (exact > type/* > */*)."""
    kind = offer.split("/")[0]
    best: tuple[int, float] | None = None
    for media, q in ranges:
        if media == offer:
            rank = 3
        elif media == f"{kind}/*":
            rank = 2
        elif media == "*/*":
            rank = 1
        else:
            continue
        if best is None or rank > best[0]:
            best = (rank, q)
    return None if best is None else best[1]


def format_param(raw_query: str) -> str | None:
    """The ``?format=`` value from a raw query string, a decoded space read back as ``+``."""
    for part in raw_query.split("&"):
        key, _, value = part.partition("=")
        if key == "format":
            decoded = _unquote(value)
            if decoded is None:
                return None
            chosen = _canonical(decoded.replace(" ", "+"))
            return chosen if chosen in OFFERS else None
    return None


def choose_content_type(accept: str | None, raw_query: str) -> str:
    """One of :data:`OFFERS`; unmatched or unparseable requests get ``text/html`` (Warehouse)."""
    forced = format_param(raw_query)
    if forced:
        return forced
    ranges = _parse_accept(accept) if accept and accept.strip(OWS) else None
    if not ranges:
        return HTML
    best: tuple[float, str] | None = None
    for offer in OFFERS:
        q = _quality(offer, ranges)
        if q is not None and q > 0 and (best is None or q > best[0]):
            best = (q, offer)
    return best[1] if best else HTML
