"""What the API Lambda counts about uploads, as CloudWatch metrics (Powertools Metrics, in the
embedded metric format, flushed once per invocation by ``@metrics.log_metrics``).

An ASGI wrapper around the app watches the upload requests (``POST /legacy/`` and its aliases)
on the wire: the body bytes that arrived and the status that went back. Refusals made before
the body is read (a wrong token, a request too large) count as well as those made after.

- ``Uploads`` and ``UploadBytes``: accepted uploads (2xx, an identical re-upload included) and
  the bytes of their requests (the form: the file and its metadata fields);
- ``UploadsRefused``: answered 4xx (the message is in the body and the log);
- ``UploadsFailed``: answered 5xx, or no answer at all;
- ``UploadLatency``: milliseconds from the request's start to the app's return, for each.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class UploadMetrics:
    """``app``, with each upload request recorded in ``metrics``."""

    def __init__(self, app: ASGIApp, metrics: Metrics, paths: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.paths = frozenset(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        received = 0
        status: int | None = None

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, counted, watched)
        finally:
            self.record(status, received, time.perf_counter() - started)

    def record(self, status: int | None, received: int, seconds: float) -> None:
        add = self.metrics.add_metric
        add("UploadLatency", MetricUnit.Milliseconds, seconds * 1000)
        if status is not None and 200 <= status < 300:
            add("Uploads", MetricUnit.Count, 1)
            add("UploadBytes", MetricUnit.Bytes, received)
        elif status is not None and 400 <= status < 500:
            add("UploadsRefused", MetricUnit.Count, 1)
        else:
            add("UploadsFailed", MetricUnit.Count, 1)
