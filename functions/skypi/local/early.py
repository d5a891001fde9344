"""``skypi serve`` answers reads as soon as its port opens, before the API is loaded.

The read path (:class:`~skypi.api.reads.ReadRoutes`: stored pages and files, 404s, the read
check of a private index) needs no web framework; the API (uploads, admin, health, its
description) is built on FastAPI and pydantic, whose import is most of what a start costs once
the folder is walked. So the server starts with the read path, the very object that serves reads
afterwards (the same bytes and headers before and after), and the API is loaded in a thread.
A request for the API that comes before it is ready waits for it (twine does not try an upload
again on a 503); should loading take longer than :data:`WAIT_SECONDS`, or fail, it is answered
503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from skypi.api.auth import Authenticator
from skypi.api.reads import ReadRoutes, Receive, Scope, Send, read_routes, respond
from skypi.api.settings import Settings
from skypi.indexer.service import Indexer
from skypi.indexer.views import Views
from skypi.store.base import Store
from skypi.store.tokens import TokenRepository

log = logging.getLogger("skypi.serve")
WAIT_SECONDS = 30.0
NOT_READY = b"The server is starting: try again in a second.\n"


class LateApp:
    """An ASGI app loaded in a thread; requests wait for it. Lifespan events are answered
    here (the API has no start-up or shut-down work), so the server does not wait for it."""

    def __init__(self, load: Callable[[], Any], wait: float = WAIT_SECONDS) -> None:
        self._load, self._wait = load, wait
        self._app: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skypi-api-load", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the app is loaded (or failed to); whether it is ready to serve."""
        self._ready.wait(timeout)
        return self._app is not None

    def _run(self) -> None:
        try:
            self._app = self._load()
        except Exception:
            log.exception("cannot load the API: its routes answer 503, reads go on")
        finally:
            self._ready.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if not self._ready.is_set():
            await asyncio.to_thread(self._ready.wait, self._wait)
        if self._app is None:
            if scope["type"] == "http":
                head = scope["method"] == "HEAD"
                plain = {"content-type": "text/plain", "retry-after": "1"}
                await respond(send, 503, plain, NOT_READY, head)
            return
        await self._app(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def early_app(
    store: Store, settings: Settings, indexer: Indexer, views: Views | None = None
) -> tuple[ReadRoutes, LateApp]:
    """The read path, serving now, and the API it hands every other request to, loaded once
    :meth:`LateApp.start` is called. One authenticator for both, as :func:`create_app` has."""
    tokens = TokenRepository(store)
    auth = Authenticator(tokens)

    def load() -> Any:
        from skypi.api.app import create_api

        return create_api(store, settings, indexer, tokens, auth)

    api = LateApp(load)
    return read_routes(store, settings, indexer, auth, api, views), api
