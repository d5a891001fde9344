"""Lambda's asynchronous invocations, played by the test: every botocore Lambda client made
while it is installed has its ``Invoke`` requests (built and signed by botocore as for AWS)
answered as Lambda answers an ``Event`` invocation (202, nothing else), and their payloads
queued; :meth:`AsyncLambda.deliver` then runs a handler with each, as Lambda's queue would
(moto runs functions in Docker only, which the tests do not have)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse


class _Empty:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


@dataclass
class Invocation:
    function: str  # the URL path's function name or ARN
    invocation_type: str | None
    payload: dict[str, Any]


@dataclass
class AsyncLambda:
    queued: list[Invocation] = field(default_factory=list)
    delivered: list[Invocation] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> AsyncLambda:
        original = botocore.session.Session.create_client

        def create_client(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
            client = original(session, service_name, *args, **kwargs)
            if service_name == "lambda":
                client.meta.events.register("before-send.lambda.Invoke", self._accept)
            return client

        monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
        return self

    def _accept(self, request: Any, **_: Any) -> AWSResponse:
        invocation_type = request.headers.get("X-Amz-Invocation-Type")
        if isinstance(invocation_type, bytes):
            invocation_type = invocation_type.decode()
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        function = request.url.split("/functions/", 1)[1].split("/invocations", 1)[0]
        self.queued.append(Invocation(function, invocation_type, json.loads(body)))
        return AWSResponse(request.url, 202, {}, _Empty())

    def deliver(self, handler: Callable[[dict[str, Any]], Any]) -> list[Any]:
        """Run ``handler`` with each queued event (oldest first); what it returned."""
        answers = []
        while self.queued:
            invocation = self.queued.pop(0)
            self.delivered.append(invocation)
            answers.append(handler(invocation.payload))
        return answers
