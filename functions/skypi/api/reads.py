"""The read path: ``/simple/…`` and ``/packages/…`` served from stored objects.

A plain ASGI app (no FastAPI routing) because it is the hot path: decide with the shared edge
rules, then stream the stored object with ETag/304, HEAD and single Range support.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from packaging.utils import canonicalize_name
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from skypi.api.auth import Authenticator
from skypi.api.settings import Settings
from skypi.api.statuses import headers_for, status_of
from skypi.core.constants import VIEW_PREFIX
from skypi.core.edge import (
    Answer,
    authorization_count,
    authorization_refusal,
    decide,
    decode_path,
    origin_uri,
    route,
)
from skypi.core.errors import AuthFailure, CorruptDocument
from skypi.core.http import cache_control_for_key, content_type_for_key
from skypi.core.keys import (
    LANDING,
    PACKAGES_PREFIX,
    PROJECT_SITE,
    ROOT_JSON_KEY,
    family_of,
    is_project,
    project_site_key,
)
from skypi.core.pages import RootListing
from skypi.core.site import fill_address, near_names, render_not_found, wants_page
from skypi.core.tokens import Scope as TokenScope
from skypi.store.base import NotFound, ObjectInfo, Presigning, Store

if TYPE_CHECKING:
    from skypi.indexer.service import Indexer
    from skypi.indexer.views import Views

log = logging.getLogger("skypi.reads")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
# How the view routes are called: (the read routes, scope, send, raw path, headers).
ViewServe = Callable[[Any, "Scope", "Send", str, dict[str, str]], Awaitable[None]]
_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)
_MAX_DIGITS = 18  # a position past any object's size; longer numbers are not even parsed
CHUNK = 256 * 1024
PEOPLE_PAGES = (LANDING, PROJECT_SITE)  # their setup lines spell the index's address
# A miss looks for near names in the root listing only up to this size (about 9,000 projects):
# past it, reading it for every mistyped address would cost more than the hint is worth.
NEAR_MAX_BYTES = 1024 * 1024
# Whether a 404 is the page for people or plain text depends on these request headers.
_PAGE_VARY = "Accept, Sec-Fetch-Dest"


def raw_path(scope: Scope) -> str:
    """The path as the client sent it (still percent-encoded), so that it is decoded once, here.
    Behind API Gateway, Mangum sets no raw path but passes the event, whose ``rawPath`` is it;
    failing both, the decoded path is encoded again."""
    raw = scope.get("raw_path")
    if raw:
        return str(raw.decode("latin-1").split("?", 1)[0])
    event = scope.get("aws.event")
    if isinstance(event, dict) and isinstance(event.get("rawPath"), str):
        return str(event["rawPath"])
    return quote(scope["path"], safe="/")


WITHHELD_UNKNOWN = (
    b"Service Unavailable: could not check whether the project is quarantined; try again.\n"
)


def _object_headers(decision: Answer, info: ObjectInfo, vary: dict[str, str]) -> dict[str, str]:
    """The headers of a stored object's answer: its type, caching, validator and encoding."""
    assert decision.key is not None
    base = {
        "content-type": decision.content_type or content_type_for_key(decision.key),
        "cache-control": cache_control_for_key(decision.key),
        "etag": info.etag,
        "accept-ranges": "bytes",
        **vary,
    }
    if decision.negotiated:  # the page's representation and its encoding
        base["vary"] = "Accept, Accept-Encoding"
    if decision.content_encoding:
        base["content-encoding"] = decision.content_encoding
    return base


def _vary(headers: dict[str, str]) -> dict[str, str]:
    return {"vary": headers["vary"]} if "vary" in headers else {}


async def respond(
    send: Send, status: int, headers: dict[str, str], body: bytes = b"", head: bool = False
) -> None:
    headers = {"content-length": str(len(body))} | headers  # the caller's dict left as it is
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, end-inclusive) of a single satisfiable range; None if unsatisfiable."""
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = (_position(g) for g in match.groups())
    if first is not None:
        start = first
        end = min(last, size - 1) if last is not None else size - 1
    else:
        assert last is not None
        start, end = max(0, size - last), size - 1
    return (start, end) if start <= end and start < size else None


def _position(digits: str) -> int | None:
    if not digits:
        return None
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def withheld_projects(indexer: Indexer) -> Callable[[str], bool]:
    """Whether a project's page withholds its files (PEP 792 quarantine), read from its page."""

    def withheld(project: str) -> bool:
        page = indexer.pages.read(canonicalize_name(project)).page
        return page is not None and page.withholds_files()

    return withheld


class ReadRoutes:
    """ASGI app answering reads; anything else goes to ``fallback``."""

    def __init__(
        self,
        store: Store,
        auth: Authenticator,
        settings: Settings,
        fallback: Any,
        withheld: Callable[[str], bool] = lambda project: False,
        views: ViewServe | None = None,
    ) -> None:
        self.store, self.auth, self.settings, self.fallback = store, auth, settings, fallback
        self.withheld = withheld  # a project whose files are not offered (PEP 792 quarantine)
        self.views = views  # ``/view/<name>/...`` (skypi.api.views), where views are served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.fallback(scope, receive, send)
            return
        method = scope["method"]
        path = raw_path(scope)
        head = method == "HEAD"
        twice = authorization_refusal(
            authorization_count(
                v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"
            )
        )
        if twice is not None:  # every route, the API's too
            await respond(
                send, 400, {"content-type": "text/plain"}, twice.reason.encode() + b"\n", head
            )
            return
        if path.startswith(VIEW_PREFIX) and self.views is not None:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            await self.views(self, scope, send, path, headers)
            return
        where = route(method, path, self.settings.health_path)
        if where == "api":
            await self.fallback(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if where == "none":  # neither the API's nor a read: the edge function's 404 too
            await self._not_found(send, path, headers, head, checked=False)
            return
        await self._read(send, scope, path, headers, head)

    async def _read(
        self, send: Send, scope: Scope, path: str, headers: dict[str, str], head: bool
    ) -> None:
        """A read, as the edge decides it: refused, redirected, or the object it names."""
        decision = decide(
            scope["method"],
            path,
            scope.get("query_string", b"").decode("latin-1"),
            headers.get("accept"),
            headers.get("accept-encoding"),
        )
        vary = {"vary": "Accept"} if path.startswith("/simple") else {}
        if decision.status == 405:
            await respond(send, 405, {"allow": "GET, HEAD"}, b"Method Not Allowed\n", head)
            return
        if decision.status == 400:
            reason = decision.reason.encode() + b"\n"
            await respond(send, 400, {"content-type": "text/plain"}, reason, head)
            return
        if not await self.authorized(send, headers, decision, head):
            return
        if decision.status in {301, 302}:
            assert decision.location is not None
            where_to = {"location": decision.location, **vary}
            await respond(send, decision.status, where_to, b"", head)
            return
        if decision.key is None:
            await self._not_found(send, path, headers, head, checked=True)
            return
        if decision.key.startswith(PACKAGES_PREFIX) and decision.project:
            refusal = await self._withheld(decision.project)
            if refusal is not None:
                await respond(send, refusal[0], dict(refusal[1]), refusal[2], head)
                return
        await self._object(send, decision, path, headers, head, vary)

    async def _object(
        self,
        send: Send,
        decision: Answer,
        path: str,
        headers: dict[str, str],
        head: bool,
        vary: dict[str, str],
    ) -> None:
        """The stored object ``decision`` names: a page read whole, a file streamed (or, past
        what the function may answer, a redirect to storage), or 304 when the client has it."""
        assert decision.key is not None
        body: bytes | None = None
        family = family_of(decision.key)
        if family is not None and family.revalidate:
            # Pages are rewritten while they are read: take the bytes and their ETag and length
            # in one read, or a reader could get the new length with the old bytes.
            try:
                info, body = await self._call(self.store.get, decision.key)
            except NotFound:
                info = None
        else:  # files never change: stream them
            try:
                info = await self._call(self.store.head, decision.key)
            except PermissionError:
                await _unreadable(send, decision.key, head)
                return
        if info is None:
            await self._not_found(send, path, headers, head, checked=True)
            return
        if body is not None and family in PEOPLE_PAGES and self.settings.index_url:
            body, info = _with_address(body, info, self.settings.index_url)
        base = _object_headers(decision, info, vary)
        if headers.get("if-none-match") in {info.etag, "*"}:
            base.pop("content-type")
            await respond(send, 304, base | {"content-length": "0"}, b"", True)
            return
        if await self.redirected(send, decision, info, base, head):
            return
        await self._send_object(send, info, headers.get("range"), base, head, body)

    async def redirected(
        self, send: Send, decision: Answer, info: ObjectInfo, base: dict[str, str], head: bool
    ) -> bool:
        """Whether ``info`` is past what the function may answer; then the client is sent
        to a short-lived presigned URL of storage (307, sent here)."""
        if (
            self.settings.redirect_over is None
            or info.size <= self.settings.redirect_over
            or not isinstance(self.store, Presigning)
        ):
            return False
        url = await run_in_threadpool(
            functools.partial(
                self.store.presigned_get_url,
                info.key,
                self.settings.presigned_ttl,
                content_type=decision.content_type,
                content_encoding=decision.content_encoding,
            )
        )
        redirect = {"location": url, "cache-control": "no-store"}
        await respond(send, 307, redirect | _vary(base), b"", head)
        return True

    async def authorized(
        self, send: Send, headers: dict[str, str], decision: Answer, head: bool
    ) -> bool:
        """Whether the request may read what ``decision`` answers (always on a public
        index); when not, the 401 or 403 is sent."""
        if not self.settings.private or not decision.authenticate:
            return True
        try:
            await run_in_threadpool(
                functools.partial(self.auth.require, tokens_only=True),
                headers.get("authorization"),
                TokenScope.READ,
                decision.project,
            )
        except AuthFailure as failure:
            status = status_of(failure)
            message = str(failure).encode() + b"\n"
            await respond(send, status, headers_for(status), message, head)
            return False
        return True

    async def _withheld(self, project: str) -> tuple[int, dict[str, str], bytes] | None:
        """PEP 792: the 404 of a quarantined project's file or ``.metadata`` (as for a file
        that is not there), the 503 when its status cannot be read (fail closed, as the edge
        function does), or None when the file may be served."""
        try:
            if not await self._call(self.withheld, project):
                return None
        except Exception:
            log.exception("cannot read whether %s is quarantined", project)
            return 503, {"content-type": "text/plain", "retry-after": "1"}, WITHHELD_UNKNOWN
        return 404, {"content-type": "text/plain"}, b"Not Found\n"

    async def _not_found(
        self, send: Send, path: str, headers: dict[str, str], head: bool, *, checked: bool
    ) -> None:
        """404. A person's browser gets the page for people (and every miss under
        ``/project/``, whoever asks); pip, uv, other clients and every file download get the
        plain answer they always had. ``checked``: the request passed the read check, so
        names of projects may be shown (always in a public index)."""
        failover = failover_project(path)
        decoded = decode_path(path)
        shown = f"/project/{failover}/" if failover else decoded
        if shown is None or shown.startswith("/packages/"):
            page = False
        else:
            people = failover is not None or shown.startswith("/project/")
            page = people or wants_page(headers.get("accept"), headers.get("sec-fetch-dest"))
        fixed = failover is not None or path.startswith(("/project/", "/packages/"))
        vary = {} if fixed else {"vary": _PAGE_VARY}  # the answer depends on those headers
        if not page:
            await respond(send, 404, {"content-type": "text/plain", **vary}, b"Not Found\n", head)
            return
        assert shown is not None
        near: list[str] = []
        if checked or not self.settings.private:
            near = await self._call(self._near, failover or shown)
        html = {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "max-age=0, s-maxage=1",
            **vary,
        }
        await respond(send, 404, html, render_not_found(shown, near), head)

    def _near(self, asked: str) -> list[str]:
        """The project names closest to the last segment of ``asked``, from the root listing
        when it is small enough to read for a miss (NEAR_MAX_BYTES)."""
        segment = next((s for s in reversed(asked.split("/")) if s), "")
        info = self.store.head(ROOT_JSON_KEY) if segment else None
        if info is None or info.size > NEAR_MAX_BYTES:
            return []
        try:
            _, raw = self.store.get(ROOT_JSON_KEY)
            names = RootListing.from_json_bytes(raw).projects
        except (NotFound, CorruptDocument):
            return []
        return near_names(segment, names)

    async def _call(self, function: Any, *args: Any) -> Any:
        """Run a store call: inline when the store says a blocking call is as cheap as the hop
        to a worker thread (a local disk), else in the thread pool (S3)."""
        if getattr(self.store, "inline_reads", False):
            return function(*args)
        return await run_in_threadpool(function, *args)

    async def _send_object(
        self,
        send: Send,
        info: ObjectInfo,
        range_header: str | None,
        headers: dict[str, str],
        head: bool,
        body: bytes | None = None,
    ) -> None:
        if body is not None:
            info = ObjectInfo(info.key, len(body), info.etag, info.last_modified)
        start, end, status = 0, info.size - 1, 200
        if range_header and info.size > 0:
            parsed = _parse_range(range_header, info.size)
            if parsed is None:
                await respond(send, 416, {"content-range": f"bytes */{info.size}"}, b"", head)
                return
            start, end, status = parsed[0], parsed[1], 206
            headers["content-range"] = f"bytes {start}-{end}/{info.size}"
        length = end - start + 1 if info.size else 0
        headers["content-length"] = str(length)
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        piece = body[start : end + 1] if body is not None and not head else b""
        stream = None
        # A HEAD opens the file too where that costs no request (a local disk), so that HEAD
        # and GET agree on a file the server may not read (on S3 one permission covers both).
        look = not head or getattr(self.store, "inline_reads", False)
        if look and length > 0 and body is None:
            # Read (or opened) before the status is sent: a file that cannot be read is
            # answered with an error, not a 200 whose body never comes.
            try:
                if head:
                    await self._call(_open_and_close, self.store, info.key)
                elif length <= CHUNK:
                    piece = await run_in_threadpool(self.store.read_range, info.key, start, length)
                else:
                    stream = await run_in_threadpool(self.store.open, info.key, start)
            except NotFound:
                await respond(send, 404, {"content-type": "text/plain"}, b"Not Found\n", head)
                return
            except PermissionError:
                await _unreadable(send, info.key, head)
                return
            if not head and stream is None and len(piece) < length:  # cut short since its look
                await _changed(send, info.key, len(piece), length)
                return
        await send({"type": "http.response.start", "status": status, "headers": raw})
        if stream is None:
            await send({"type": "http.response.body", "body": piece})
            return
        await _stream(send, stream, info.key, length)


async def _stream(send: Send, stream: Any, key: str, length: int) -> None:
    """Send ``length`` bytes of an open stream as the body; :class:`CutShort` if it ends
    before (the status is out: only aborting the answer tells the client)."""
    sent = 0
    async for chunk in iterate_in_threadpool(_chunks(stream, length)):
        sent += len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    if sent < length:
        raise _cut_short(key, sent, length)
    await send({"type": "http.response.body", "body": b""})


def _open_and_close(store: Store, key: str) -> None:
    """Whether ``key`` can be opened for reading (raises as :meth:`Store.open` does)."""
    with store.open(key):
        pass


def failover_project(path: str) -> str | None:
    """The project whose page for people the request is for, when its path is that page's
    key in the bucket: the request CloudFront sends to the API when the bucket has no such
    page (the origin group of ``/project/*``, docs/aws-runtime.md). Viewers never send it: the
    edge answers a path under ``/site/`` with 404 itself.

    >>> failover_project("/site/project/foo-bar/index.html"), failover_project("/project/x/")
    ('foo-bar', None)
    """
    parts = path.split("/")
    if len(parts) != 5 or parts[0] != "" or not is_project(parts[3]):
        return None
    return parts[3] if path == origin_uri(project_site_key(parts[3])) else None


def _with_address(body: bytes, info: ObjectInfo, url: str) -> tuple[bytes, ObjectInfo]:
    """A page for people with this index's address put in, under an ETag of its own."""
    filled = fill_address(body, url)
    if filled is body:
        return body, info
    tag = hashlib.sha256(url.encode()).hexdigest()[:12]
    etag = f'{info.etag.removesuffix(chr(34))}-{tag}"'
    return filled, ObjectInfo(info.key, len(filled), etag, info.last_modified)


def _chunks(stream: Any, length: int) -> Any:
    """Up to ``length`` bytes of an open stream, in pieces; the stream is closed after."""
    with stream as fh:
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


class CutShort(OSError):
    """A stored file that ended before the length its answer declared, once its status had
    gone out (cut short, or replaced by fewer bytes, while it was sent). Raised out of the
    application so that the server aborts the answer: uvicorn closes the connection (the
    client sees a body shorter than its ``Content-Length``), Mangum answers 500; ending the
    body instead would be a short 200 wherever the server does not count the bytes."""


def _cut_short(key: str, sent: int, length: int) -> CutShort:
    message = (
        f"{key} ended after {sent:,} of {length:,} bytes (changed while it was sent): "
        "the answer is aborted"
    )
    log.warning("%s", message)
    return CutShort(message)


async def _changed(send: Send, key: str, got: int, length: int) -> None:
    """A stored file that holds fewer bytes than its look said, found before any header went
    out: 503, and the next try reads what storage holds then."""
    log.warning("%s holds %d of the %d bytes it had when looked at: answered 503", key, got, length)
    message = b"This file changed while it was being read: try again.\n"
    await respond(send, 503, {"content-type": "text/plain", "retry-after": "1"}, message)


async def _unreadable(send: Send, key: str, head: bool) -> None:
    """A stored file this server may not read (its permissions): 403, as nginx answers."""
    log.warning("cannot read %s: permission denied", key)
    message = b"This file cannot be read by the server (check its permissions).\n"
    await respond(send, 403, {"content-type": "text/plain"}, message, head)


def read_routes(
    store: Store,
    settings: Settings,
    indexer: Indexer,
    auth: Authenticator,
    api: Any,
    views: Views | None = None,
) -> ReadRoutes:
    """The read path over ``store``, every other request handed to ``api``."""
    view_routes = None
    if views is not None:  # imported here: the API Lambda serves no views (~23 ms at start)
        from skypi.api.views import ViewRoutes

        view_routes = ViewRoutes(views)
    return ReadRoutes(store, auth, settings, api, withheld_projects(indexer), view_routes)
