"""The view Lambda: what ``/view/*`` does on AWS when the bucket has no object for a request.

CloudFront's ``/view/*`` behaviour sends each request to an origin group: the bucket first,
then, when the bucket answers 403 or 404, this function's URL with the same request, whose URI
the view's edge function has already rewritten to the stored key
(:func:`skypi.core.viewedge.from_origin_uri`). The function turns it back into the viewer's
request and answers it with the read routes ``skypi serve`` uses for views
(:class:`~skypi.api.views.ViewRoutes` over :class:`~skypi.indexer.views.Views` and the S3
store): a project's page is made from upstream's, stored, and answered; a file is fetched,
checked against upstream's SHA-256 and stored, or, past :data:`FILL_LIMIT`, answered with a
redirect to upstream's URL. Later requests for what it stored are hits of the bucket.

The second event is the views' timer (``skypi.store.scheduler``): a one-time schedule that
makes again the stored pages that are due, then arms itself for the next one.

Every answer is the routes' own (404 for anything the function does not serve, 502/504 when
upstream cannot be used); an error no route expected is answered 502, never 500. The module
loads only Powertools' logger: the routes, their S3 client and Mangum are built at the first
event, once per container.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger

from skypi import tracing
from skypi.core.constants import INDEX_URL_VARIABLE
from skypi.core.http import MAX_LAMBDA_RESPONSE_BYTES
from skypi.core.keys import OSV_KEY, policy_view
from skypi.core.negotiate import V1_JSON
from skypi.core.viewedge import from_origin_uri

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mangum import Mangum

    from skypi.indexer.views import Views

# How long CloudFront waits for the function (the stack sets it); a miss makes at most two
# upstream fetches (the page, then the file), each given half of what is left after a margin
# for storing, so that a trickling upstream gets a 504 from here, not a timeout at the edge.
ORIGIN_TIMEOUT_VARIABLE: Final = "SKYPI_VIEW_ORIGIN_TIMEOUT"
ORIGIN_TIMEOUT_DEFAULT: Final = 30.0  # CloudFront's default origin response timeout
STORE_MARGIN: Final = 10.0
# What a background fill leaves of its run for completing (or aborting) its upload and logging.
FILL_MARGIN: Final = 30.0
TEXT: Final = {"content-type": "text/plain", "cache-control": "no-store"}
logger = Logger(service="skypi-view")
tracing.route_logs(logger)
_built: tuple[Mangum, Views] | None = None


def _build(context: Any) -> tuple[Mangum, Views]:
    """The read routes with views over the S3 store, once per container."""
    global _built
    if _built is None:
        from mangum import Mangum
        from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

        from skypi.api.auth import Authenticator
        from skypi.api.reads import ReadRoutes
        from skypi.api.settings import Settings
        from skypi.api.views import ViewRoutes
        from skypi.indexer.views import FILL_LIMIT, Views
        from skypi.store.cdn import QueuedCdn
        from skypi.store.s3 import S3Store
        from skypi.store.scheduler import ViewTimer
        from skypi.store.selfinvoke import SelfInvoke
        from skypi.store.tokens import TokenRepository
        from skypi.store.upstream import Upstream, UpstreamLimits

        store = S3Store.from_environment()
        invoke = SelfInvoke(context.invoked_function_arn)
        views = Views(
            store,
            Upstream(UpstreamLimits(budget=fetch_budget())),
            timer=ViewTimer.from_environment(context.invoked_function_arn),
            fill_limit=FILL_LIMIT,
            cdn=QueuedCdn.from_environment(),
            background=lambda request: invoke(request.to_event()),
        )
        settings = Settings(
            redirect_over=MAX_LAMBDA_RESPONSE_BYTES,
            index_url=os.environ.get(INDEX_URL_VARIABLE) or None,
        )
        # Reads are public here: the edge checked the token before the origin group.
        routes = ReadRoutes(
            store,
            Authenticator(TokenRepository(store)),
            settings,
            _not_served,
            views=ViewRoutes(views),
        )
        app = Mangum(
            _Guard(routes), lifespan="off", text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, V1_JSON]
        )
        _built = (app, views)
    return _built


def fetch_budget() -> float:
    """Seconds one upstream fetch may take in all, from the origin timeout the stack gives.

    >>> fetch_budget()
    10.0
    """
    try:
        origin = float(os.environ.get(ORIGIN_TIMEOUT_VARIABLE, ORIGIN_TIMEOUT_DEFAULT))
    except ValueError:
        origin = ORIGIN_TIMEOUT_DEFAULT
    return max(5.0, (origin - STORE_MARGIN) / 2)


async def _not_served(scope: Any, receive: Any, send: Any) -> None:
    """What is not a read under ``/view/`` (never sent by the edge)."""
    await _answer(send, 404, b"Not Found\n")


async def _answer(send: Any, status: int, body: bytes) -> None:
    headers = [(k.encode(), v.encode()) for k, v in TEXT.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Guard:
    """An error the routes did not expect is a 502 with a message (logged), never a 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def sending(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            logger.exception("the view request failed")
            if started:
                raise
            await _answer(send, 502, b"Bad Gateway: the view could not answer; try again.\n")


def viewer_event(event: dict[str, Any]) -> dict[str, Any] | None:
    """The function URL's event as the viewer's request to the view routes, or None when
    its path is nothing this function serves."""
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    path = event.get("rawPath")
    if not isinstance(http, dict) or not isinstance(path, str):
        return None
    found = from_origin_uri(path)
    if found is None:
        return None
    # The representation is the path's, whatever the request accepts; no credentials (the
    # edge checked them; behind OAC this header is CloudFront's signature).
    headers = {
        k.lower(): v
        for k, v in (event.get("headers") or {}).items()
        if k.lower() not in {"authorization", "accept", "accept-encoding"}
    }
    headers |= {"accept": found.accept, "accept-encoding": found.accept_encoding}
    return event | {
        "rawPath": found.path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": context | {"http": http | {"path": found.path}},  # type: ignore[operator]
    }


def changed_views(event: dict[str, Any]) -> list[str | None]:
    """What an S3 event names that changes views' pages: a view's policy (its name) or the
    OSV data (None), each once; any other key is ignored. S3 sends keys URL-encoded, spaces
    as ``+``.

    >>> from skypi.core.keys import file_key, view_policy_key
    >>> policy = view_policy_key("safe")
    >>> records = [{"eventSource": "aws:s3", "s3": {"object": {"key": k}}}
    ...            for k in (policy, OSV_KEY, policy.replace("safe", "..%2Fx"), policy,
    ...                      file_key("a", "a-1.0.tar.gz"))]
    >>> changed_views({"Records": records})
    ['safe', None]
    >>> changed_views({"Records": [None, {"eventSource": "aws:s3", "s3": {"object": 1}}]})
    []
    """
    found: dict[str | None, None] = {}
    for record in event.get("Records") or []:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            continue
        s3 = record.get("s3")
        found_object = s3.get("object") if isinstance(s3, dict) else None
        key = found_object.get("key") if isinstance(found_object, dict) else None
        if not isinstance(key, str):
            continue
        key = unquote_plus(key)
        if key == OSV_KEY:
            found[None] = None
        elif (view := policy_view(key)) is not None:
            found[view] = None
    return list(found)


def _not_found() -> dict[str, Any]:
    return {"statusCode": 404, "headers": dict(TEXT), "body": "Not Found\n"}


@logger.inject_lambda_context
@tracing.capture_lambda_handler("skypi-view")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A miss (a function URL request), the timer (``{"skypi": "view-refresh"}``), a file
    to fill (``{"skypi": "view-fill", ...}``, sent by a miss to this very function) or the
    bucket's event for a policy or the OSV data written."""
    if isinstance(event.get("Records"), list):  # the bucket: a policy or the OSV data written
        views = _build(context)[1]
        seconds = context.get_remaining_time_in_millis
        made = sum(
            views.follow_change(view, time_left=lambda: seconds() / 1000)
            for view in changed_views(event)
        )
        logger.info("made %d view pages again after a change", made, extra={"made": made})
        return {"made": made}
    if event.get("skypi") == "view-refresh":
        seconds = context.get_remaining_time_in_millis
        made = _build(context)[1].refresh_due(time_left=lambda: seconds() / 1000)
        logger.info("made %d due view pages again", made, extra={"made": made})
        return {"made": made}
    if event.get("skypi") == "view-fill":
        return {"filled": _fill(event, context)}
    viewer = viewer_event(event)
    if viewer is None:
        logger.info("not a view request: %r", str(event.get("rawPath"))[:300])
        return _not_found()
    app = _build(context)[0]
    _event_loop()
    return dict(app(viewer, context))  # type: ignore[arg-type]


def _fill(event: dict[str, Any], context: LambdaContext) -> bool:
    """Fill the file an asynchronous invocation names, within the time this run has left
    (less :data:`FILL_MARGIN`); whether it stored it. A failure is logged, never raised: Lambda
    would run the event again (twice), and a request for the file sends it again anyway."""
    from skypi.indexer.views import FillRequest

    request = FillRequest.from_event(event)
    if request is None:
        logger.warning("not a view fill: %r", str(event)[:300])
        return False
    budget = max(1.0, context.get_remaining_time_in_millis() / 1000 - FILL_MARGIN)
    try:
        filled = _build(context)[1].fill(request, budget=budget)
    except Exception as exc:  # an upstream that fails or lies: nothing stored
        logger.warning("view %s: %s not filled: %s", request.view, request.filename, exc)
        return False
    logger.info("view %s: %s filled: %s", request.view, request.filename, filled)
    return filled


def _event_loop() -> None:
    """Give this thread an event loop for Mangum, which takes the current one: Python 3.14's
    ``asyncio.get_event_loop`` no longer makes one where none is set."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
