"""A Lambda function's work handed to itself: an asynchronous invocation of the function that
is running (``InvocationType: Event``), for work longer than its caller may wait.

What the view Lambda does with a file too big or too slow to fetch while CloudFront waits:
the viewer gets a redirect at once, and Lambda queues the event and runs the function again
with it (up to 15 minutes). Lambda documents (AWS Lambda API reference, "Invoke"):

- an asynchronous invocation's payload is at most 1 MB (:data:`ASYNC_PAYLOAD_LIMIT`; the
  events sent here are a few hundred bytes, and a larger one is refused before it is sent);
- an event may be delivered more than once, and one whose run fails is tried up to two more
  times: the work must be idempotent (a view's fill is: it stores create-only, and looks at
  the key first).

Within one container an event sent in the last :data:`RESEND_SECONDS` is not sent again, so
that a burst of requests for one file starts one fill per container.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Final

from skypi.store.aws import create_client

log = logging.getLogger("skypi.views")
ASYNC_PAYLOAD_LIMIT: Final = 1024 * 1024
RESEND_SECONDS: Final = 15 * 60.0  # a Lambda's longest run: a fill sent is done by then
MAX_REMEMBERED: Final = 1000


class PayloadTooLarge(ValueError):
    """An event larger than Lambda takes for an asynchronous invocation."""


class SelfInvoke:
    """Sends events to the function ``function_arn`` (the running one's, from its context)."""

    def __init__(self, function_arn: str, client: Any = None) -> None:
        self.function_arn = function_arn
        self._client = client
        self._sent: dict[bytes, float] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = create_client("lambda")
        return self._client

    def __call__(self, event: dict[str, Any]) -> bool:
        """Queue ``event`` for the function; whether it was sent (not sent lately)."""
        payload = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
        if len(payload) > ASYNC_PAYLOAD_LIMIT:
            raise PayloadTooLarge(f"{len(payload):,} bytes; Lambda takes {ASYNC_PAYLOAD_LIMIT:,}")
        now = time.monotonic()
        with self._lock:
            if now - self._sent.get(payload, -RESEND_SECONDS) < RESEND_SECONDS:
                return False
            if len(self._sent) >= MAX_REMEMBERED:
                self._sent.clear()
            self._sent[payload] = now
        try:
            self.client.invoke(
                FunctionName=self.function_arn, InvocationType="Event", Payload=payload
            )
        except Exception:
            with self._lock:
                self._sent.pop(payload, None)
            raise
        return True
