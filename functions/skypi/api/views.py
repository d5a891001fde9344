"""The read path of views: ``/view/<name>/simple/...``, ``/view/<name>/files/...`` and
``/view/<name>/packages/...``, negotiated and authorized exactly as ``/simple/`` is.

A page the view has stored is read like any page. A miss, a page that is due, or a file's
first download runs :class:`~skypi.indexer.views.Views` on its own bounded pool of threads,
so a slow upstream never holds up the private index's reads (which never wait on it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from skypi.api.reads import respond
from skypi.core.edge import Answer
from skypi.core.errors import CorruptDocument, DoesNotExist, InvalidRequest
from skypi.core.http import cache_control_for_key, content_type_for_key, gzip_page
from skypi.core.keys import PROJECT_PAGE, ROOT_JSON_KEY, VIEW_PAGE, family_of
from skypi.core.negotiate import V1_HTML, V1_JSON
from skypi.core.pages import RootListing
from skypi.core.render import render_root_html
from skypi.core.viewedge import ViewRequest, decide_view
from skypi.indexer.views import HashMismatch, Served, TooBigToFill, Views
from skypi.store.base import NotFound
from skypi.store.upstream import UpstreamBusy, UpstreamRefused, UpstreamTimeout, UpstreamUnavailable

log = logging.getLogger("skypi.views")
WORKERS = 4  # upstream work in flight at once, per process
QUEUE = 64  # view requests waiting for a worker before the next is turned away (503)
TEXT = {"content-type": "text/plain", "cache-control": "no-store"}


def _failure_status(exc: Exception) -> int:
    """503 when this server is too busy to ask upstream now, 504 when upstream did not answer
    in time, 502 when it answered what a view cannot use (or was unreachable)."""
    if isinstance(exc, UpstreamBusy):
        return 503
    return 504 if isinstance(exc, UpstreamTimeout) else 502


class Made(Exception):
    """A page made for this request rather than read from storage."""

    def __init__(self, pages: dict[str, bytes]) -> None:
        super().__init__("made")
        self.pages = pages


class ViewRoutes:
    """Answers reads under ``/view/``, given the read routes it shares everything with."""

    def __init__(self, views: Views) -> None:
        self.views = views
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="skypi-view")
        self.waiting = 0

    async def _run(self, function: Any, *args: Any) -> Any:
        """Run view work on the view pool; :class:`UpstreamUnavailable` when it is full."""
        if self.waiting >= QUEUE:
            raise UpstreamBusy("too many view requests waiting for upstream")
        self.waiting += 1
        try:
            return await asyncio.wrap_future(self.pool.submit(function, *args))
        finally:
            self.waiting -= 1

    async def __call__(
        self, reads: Any, scope: Any, send: Any, path: str, headers: dict[str, str]
    ) -> None:
        head = scope["method"] == "HEAD"
        found = decide_view(
            scope["method"],
            path,
            scope.get("query_string", b"").decode("latin-1"),
            headers.get("accept"),
            headers.get("accept-encoding"),
        )
        answer = found.answer
        if answer.status in {400, 405}:
            allow = {"allow": "GET, HEAD"} if answer.status == 405 else {}
            body = (answer.reason or "Method Not Allowed").encode() + b"\n"
            await respond(send, answer.status, TEXT | allow, body, head)
            return
        if not await reads.authorized(send, headers, answer, head):
            return
        if answer.location is not None:
            await respond(send, answer.status, {"location": answer.location}, b"", head)
            return
        try:
            key = await self._key(reads, found)
        except DoesNotExist as exc:
            await respond(send, 404, TEXT, f"{exc}\n".encode(), head)
            return
        except TooBigToFill as exc:  # upstream's own URL; the page's hash checks its bytes
            await respond(send, 307, {"location": exc.url, "cache-control": "no-store"}, b"", head)
            return
        except (UpstreamUnavailable, UpstreamRefused, HashMismatch, InvalidRequest) as exc:
            log.warning("view %s: %s", found.view, exc)
            status = _failure_status(exc)
            message = f"The upstream index of view {found.view!r} cannot be used now: {exc}\n"
            await respond(send, status, TEXT | {"retry-after": "5"}, message.encode(), head)
            return
        if key is None:
            await respond(send, 404, TEXT, b"Not Found\n", head)
            return
        if isinstance(key, Made):
            await self._made(send, answer, key.pages, headers, head)
            return
        if found.kind == "root":
            await self._root(reads, send, found, headers, head)
            return
        await self._object(reads, send, answer, key, headers, head)

    async def _key(self, reads: Any, found: ViewRequest) -> str | Made | None:
        """Which stored object answers ``found`` (None: 404), made or fetched if needed."""
        answer, views = found.answer, self.views
        if answer.key is None or found.kind == "none":
            return None
        if found.kind == "page" and found.pin is not None:
            served, pages = await self._run(views.pinned, found.view, found.project, found.pin)
            if served is Served.STORED:
                return Made(pages)
            return found.private_key if served is Served.PRIVATE else None
        if found.kind == "page":
            served = await self._run(views.project, found.view, found.project)
            if served is Served.PRIVATE:  # the private page itself, as /simple/ serves it
                return found.private_key
            return answer.key if served is Served.STORED else None
        if found.kind == "file":
            stored: str | None = await self._run(
                views.file, found.view, found.project, found.filename, found.pin
            )
            return stored
        if found.kind == "private-file":
            refusal = await reads._withheld(found.project)
            return answer.key if refusal is None else None
        if found.kind == "root":
            await self._run(views.policy, found.view)
            return answer.key
        return None

    async def _made(
        self,
        send: Any,
        answer: Answer,
        pages: dict[str, bytes],
        headers: dict[str, str],
        head: bool,
    ) -> None:
        """A page made for this request (a time-pinned form's), in the negotiated form."""
        kind = answer.content_type or V1_JSON
        body = pages["json" if kind == V1_JSON else "v1html" if kind == V1_HTML else "html"]
        base = {
            "content-type": kind,
            "cache-control": "max-age=0",
            "vary": "Accept, Accept-Encoding",
        }
        if answer.content_encoding:
            body = gzip_page(body)
            base["content-encoding"] = answer.content_encoding
        base["etag"] = f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
        if headers.get("if-none-match") == base["etag"]:
            base.pop("content-type")
            await respond(send, 304, base | {"content-length": "0"}, b"", True)
            return
        await respond(send, 200, base, body, head)

    async def _root(
        self, reads: Any, send: Any, found: ViewRequest, headers: dict[str, str], head: bool
    ) -> None:
        """The view's root: the private names and the upstream names it has served."""
        try:
            _, raw = await reads._call(self.views.store.get, ROOT_JSON_KEY)
            private = RootListing.from_json_bytes(raw)
        except (NotFound, CorruptDocument):
            private = RootListing()
        root = await self._run(self.views.root, found.view, private)
        kind = found.answer.content_type or V1_JSON
        body = root.to_json_bytes() if kind == V1_JSON else render_root_html(root)
        base = {
            "content-type": kind,
            "cache-control": "max-age=0",
            "vary": "Accept, Accept-Encoding",
        }
        if found.answer.content_encoding:
            body = gzip_page(body)
            base["content-encoding"] = found.answer.content_encoding
        await respond(send, 200, base, body, head)

    async def _object(
        self,
        reads: Any,
        send: Any,
        answer: Answer,
        key: str,
        headers: dict[str, str],
        head: bool,
    ) -> None:
        """A stored page or file, as the read routes send one (ETag, 304, Range)."""
        body: bytes | None = None
        try:
            if family_of(key) in (VIEW_PAGE, PROJECT_PAGE):  # rewritten in place: read whole
                info, body = await reads._call(self.views.store.get, key)
            else:  # a file, never changed: streamed
                info = await reads._call(self.views.store.head, key)
        except NotFound:
            info = None
        if info is None:
            await respond(send, 404, TEXT, b"Not Found\n", head)
            return
        base = {
            "content-type": answer.content_type or content_type_for_key(key),
            "cache-control": cache_control_for_key(key),
            "etag": info.etag,
            "accept-ranges": "bytes",
        }
        if answer.negotiated:
            base["vary"] = "Accept, Accept-Encoding"
        if answer.content_encoding:
            base["content-encoding"] = answer.content_encoding
        if headers.get("if-none-match") in {info.etag, "*"}:
            base.pop("content-type")
            await respond(send, 304, base | {"content-length": "0"}, b"", True)
            return
        if await reads.redirected(send, answer, info, base, head):  # past a Lambda's answer
            return
        await reads._send_object(send, info, headers.get("range"), base, head, body)
