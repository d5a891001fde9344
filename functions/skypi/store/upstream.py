"""The upstream index a view reads: PEP 691 JSON pages (revalidated with their ETag) and files,
over HTTP, bounded in time, size and concurrency.

The standard library's HTTP client, so that the same adapter runs in a Lambda (whose bundle
has no httpx) and in ``skypi serve``. Redirects are followed to http and https URLs only.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from types import EllipsisType
from typing import Any, Final, Protocol

import skypi
from skypi.core.negotiate import V1_JSON

log = logging.getLogger("skypi.upstream")
CHUNK: Final = 256 * 1024
JSON_TYPES: Final = (V1_JSON, "application/json")


class Writable(Protocol):
    """Where a file's bytes go as they arrive (a temporary file, a multipart upload)."""

    def write(self, data: bytes, /) -> int: ...


class UpstreamUnavailable(Exception):
    """The upstream did not answer usefully this time (network, timeout, 5xx, too busy)."""


class UpstreamTimeout(UpstreamUnavailable):
    """The upstream did not answer within the time a view waits (a gateway timeout)."""


class UpstreamBusy(UpstreamUnavailable):
    """This server has too many upstream requests in flight already (try again shortly)."""


class UpstreamRefused(Exception):
    """The upstream answered with something a view must not take (too big, not JSON)."""


class PastWaitLimit(Exception):
    """A file larger than a client is made to wait for (its Content-Length says so, or its
    bytes went past the limit): fetched later, in the background, not now."""


@dataclass(frozen=True)
class UpstreamLimits:
    """How much a view may ask of its upstream at once, and how long and how much it waits."""

    timeout: float = 10.0  # seconds per connection attempt and per read
    max_page_bytes: int = 64 * 1024 * 1024
    max_file_bytes: int = 4 * 1024**3
    concurrency: int = 4  # requests in flight to upstreams, per process
    wait: float = 5.0  # how long a request waits for a free slot before giving up
    # How long one page or file may take in all (None: each read bounded by ``timeout`` only):
    # a function that must answer CloudFront in time cannot wait on an upstream that trickles.
    budget: float | None = None


@dataclass(frozen=True)
class PageFetch:
    """An upstream page: ``status`` 200 (``body``, ``etag``), 304 (unchanged) or 404."""

    status: int
    body: bytes = b""
    etag: str | None = None
    url: str = ""  # where it came from, after redirects (relative links resolve against it)


class _HttpOnly(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http and https only (never ``ftp:`` or ``file:``)."""

    max_redirections = 5

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str):  # type: ignore[no-untyped-def]
        if not newurl.startswith(("http://", "https://")):
            raise urllib.error.HTTPError(newurl, code, "redirect to a non-HTTP URL", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Upstream:
    """HTTP to upstream indexes, shared by every view of a process."""

    def __init__(self, limits: UpstreamLimits | None = None) -> None:
        self.limits = limits or UpstreamLimits()
        self._slots = threading.BoundedSemaphore(self.limits.concurrency)
        self._opener = urllib.request.build_opener(_HttpOnly())
        self.requests = 0  # how many requests were sent (the budget's figure)

    def _open(self, url: str, headers: dict[str, str]) -> Any:
        if not url.startswith(("http://", "https://")):
            raise UpstreamRefused(f"not an http(s) URL: {url!r}")
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            url, headers={"User-Agent": f"skypi/{skypi.__version__}", **headers}
        )
        self.requests += 1
        return self._opener.open(request, timeout=self.limits.timeout)

    def _deadline(self, budget: float | EllipsisType | None = ...) -> tuple[float, float] | None:
        """(when the fetch starting now must be done, its budget), if it has one (``...``:
        the limits' budget)."""
        chosen = self.limits.budget if budget is ... else budget
        return None if chosen is None else (time.monotonic() + chosen, chosen)

    def _slot(self) -> None:
        if not self._slots.acquire(timeout=self.limits.wait):
            raise UpstreamBusy("too many upstream requests in flight; try again")

    def page(self, url: str, etag: str | None = None) -> PageFetch:
        """The PEP 691 JSON page at ``url``; with ``etag``, 304 when it is unchanged."""
        headers = {"Accept": f"{V1_JSON}, application/json;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        self._slot()
        try:
            with self._open(url, headers) as response:
                kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if kind not in JSON_TYPES:
                    raise UpstreamRefused(f"{url} answered {kind or 'no type'}, not PEP 691 JSON")
                body = _read(response, self.limits.max_page_bytes, url, self._deadline())
                return PageFetch(200, body, response.headers.get("ETag"), response.geturl())
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return PageFetch(304, etag=etag, url=url)
            if exc.code in {404, 410}:
                return PageFetch(404, url=url)
            raise UpstreamUnavailable(f"{url} answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _unavailable(url, exc) from None
        finally:
            self._slots.release()

    def file(
        self,
        url: str,
        sink: Writable,
        on_chunk: Callable[[int], None] | None = None,
        *,
        wait_limit: int | None = None,
        budget: float | EllipsisType | None = ...,
    ) -> str:
        """Copy the file at ``url`` into ``sink``; its SHA-256 (hex). Bounded by
        ``max_file_bytes`` and ``budget`` seconds in all (``...``: the limits' own);
        :class:`PastWaitLimit` when its Content-Length or its bytes go past ``wait_limit``;
        :class:`UpstreamUnavailable` when it cannot be had whole."""
        self._slot()
        try:
            deadline = self._deadline(budget)
            with self._open(url, {}) as response:
                _check_declared(response, url, wait_limit)
                return self._copy(response, url, sink, on_chunk, deadline, wait_limit)
        except urllib.error.HTTPError as exc:
            raise UpstreamUnavailable(f"{url} answered {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise _unavailable(url, exc) from None
        finally:
            self._slots.release()

    def _copy(
        self,
        response: Any,
        url: str,
        sink: Writable,
        on_chunk: Callable[[int], None] | None,
        deadline: tuple[float, float] | None,
        wait_limit: int | None,
    ) -> str:
        digest = hashlib.sha256()
        total = 0
        while chunk := response.read(CHUNK):
            _in_time(deadline, url)
            total += len(chunk)
            if total > self.limits.max_file_bytes:
                raise UpstreamRefused(f"{url} is larger than {self.limits.max_file_bytes:,} bytes")
            if wait_limit is not None and total > wait_limit:
                raise PastWaitLimit(f"{url} is larger than {wait_limit:,} bytes")
            digest.update(chunk)
            sink.write(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
        return digest.hexdigest()


def _check_declared(response: Any, url: str, wait_limit: int | None) -> None:
    """A Content-Length past ``wait_limit``: known before a byte is read."""
    declared = response.headers.get("Content-Length")
    if wait_limit is not None and declared and declared.isdigit() and int(declared) > wait_limit:
        raise PastWaitLimit(f"{url} declares {int(declared):,} bytes, past {wait_limit:,}")


def _read(response: Any, limit: int, url: str, deadline: tuple[float, float] | None) -> bytes:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise UpstreamRefused(f"{url} is larger than {limit:,} bytes")
    body = bytearray()
    while chunk := response.read(min(CHUNK, limit + 1 - len(body))):
        _in_time(deadline, url)
        body += chunk
        if len(body) > limit:
            raise UpstreamRefused(f"{url} is larger than {limit:,} bytes")
    return bytes(body)


def _in_time(deadline: tuple[float, float] | None, url: str) -> None:
    if deadline is not None and time.monotonic() > deadline[0]:
        raise UpstreamTimeout(f"{url} took longer than {deadline[1]:g} s")


def _unavailable(url: str, exc: BaseException) -> UpstreamUnavailable:
    """The failure to raise for ``exc``: a timeout (connecting or reading) as such."""
    timed_out = isinstance(exc, TimeoutError) or isinstance(
        getattr(exc, "reason", None), TimeoutError
    )
    kind = UpstreamTimeout if timed_out else UpstreamUnavailable
    return kind(f"{url}: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__
