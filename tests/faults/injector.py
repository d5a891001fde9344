"""A seeded fault injector between the code and its storage.

On the AWS path it hooks botocore's ``before-send`` event of a client, so every request the
code makes may be answered as S3 answers under trouble, chosen by a seeded random draw with a
rate per kind:

- ``internal-error``: 500 InternalError; half of them after S3 did the work, which S3's
  error best practices allow ("Requests that receive an InternalError response might not
  have processed");
- ``slow-down``: 503 SlowDown (S3's throttling of a hot prefix);
- ``timeout``: no answer in time; half of them before the request arrives, half after S3 did
  the work (the reply is lost, and a retry finds the write already done);
- ``reset``: the connection dropped while the answer's body was read: a streaming GET gets the
  first part of the real body, then the reset; any other call is retried by botocore as it
  retries a ``ConnectionClosedError``.

botocore retries the first three (standard mode), and the ones that come during a body read
reach the code as they would on AWS. On a folder, :class:`FullDisk` wraps the local store and
fails some writes with ``ENOSPC``. The tally counts every fault injected, by kind.
"""

from __future__ import annotations

import errno
import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import ReadTimeoutError as URLLib3ReadTimeout

from skypi.store.base import Body, ObjectInfo
from skypi.store.local import LocalStore

S3_KINDS = ("internal-error", "slow-down", "timeout", "reset")
_ERRORS = {
    "internal-error": (500, "InternalError", "We encountered an internal error."),
    "slow-down": (503, "SlowDown", "Please reduce your request rate."),
}


class Faults:
    """Seeded draws of which fault (if any) meets the next request, and the tally."""

    def __init__(self, seed: int, rates: dict[str, float]) -> None:
        self.rng = random.Random(seed)
        self.rates = rates
        self.enabled = True
        self.injected: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()  # operations seen, faulted or not
        self.met: Counter[tuple[str, str]] = Counter()  # (kind, operation) of each fault
        self._lock = threading.Lock()

    def draw(self, operation: str, kinds: tuple[str, ...]) -> str | None:
        """The fault for one request of ``operation`` (None: let it through)."""
        with self._lock:
            self.requests[operation] += 1
            if not self.enabled:
                return None
            roll = self.rng.random()
            for kind in kinds:
                roll -= self.rates.get(kind, 0.0)
                if roll < 0:
                    self.injected[kind] += 1
                    self.met[kind, operation] += 1
                    return kind
            return None

    def coin(self) -> bool:
        with self._lock:
            return self.rng.random() < 0.5


class _Empty:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class _CutShort:
    """A real response body that stops part-way: the connection reset (or timed out) there."""

    def __init__(self, raw: Any, keep: int, error: Exception) -> None:
        self._raw, self._left, self._error = raw, keep, error

    def read(self, amt: int | None = None) -> bytes:
        if self._left <= 0 or amt is None:  # a whole read fails, as urllib3's does
            self._raw.close()
            raise self._error
        want = self._left if amt is None else min(amt, self._left)
        chunk: bytes = self._raw.read(want)
        self._left -= len(chunk)
        if not chunk:  # the body was shorter than the cut: the fault comes at its end
            self._left = 0
            return self.read(amt)
        return chunk

    def stream(self, **_: Any) -> Iterator[bytes]:
        while True:
            yield self.read(64 * 1024)

    def close(self) -> None:
        self._raw.close()


class BotocoreFaults:
    """Faults on every request of one botocore client (see the module's docstring)."""

    def __init__(self, faults: Faults, client: Any, kinds: tuple[str, ...] = S3_KINDS) -> None:
        self.faults, self.client, self.kinds = faults, client, kinds
        client.meta.events.register_first("before-send", self._before_send)

    def _before_send(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        kind = self.faults.draw(operation, self.kinds)
        if kind is None:
            return None
        if kind in _ERRORS:
            status, code, message = _ERRORS[kind]
            if kind == "internal-error" and self.faults.coin():
                self._send(request)  # "might not have processed" (S3): here it did
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            return AWSResponse(request.url, status, {}, _Empty(body))
        streaming = bool(getattr(request, "stream_output", False))
        if kind == "timeout":
            if not streaming and self.faults.coin():
                self._send(request)  # S3 did it; the answer never came back
            raise ReadTimeoutError(endpoint_url=request.url)
        if not streaming:  # a reset while reading a small answer: botocore retries it
            if self.faults.coin():
                self._send(request)
            raise ConnectionClosedError(endpoint_url=request.url)
        response = self._send(request)  # a GET whose body stops part-way
        if response.status_code >= 300:  # an error's body is read whole by botocore
            raise ConnectionClosedError(endpoint_url=request.url)
        size = int(response.headers.get("content-length", "0") or 0)
        keep = self.faults.rng.randrange(max(1, size))
        error: Exception = ProtocolError("Connection broken: connection reset by peer")
        if self.faults.coin():
            error = URLLib3ReadTimeout(None, request.url, "Read timed out.")  # type: ignore[arg-type]
        response.raw = _CutShort(response.raw, keep, error)
        return response

    def _send(self, request: Any) -> AWSResponse:
        return self.client._endpoint.http_session.send(request)  # type: ignore[no-any-return]


class FullDisk(LocalStore):
    """A folder whose disk is full for some writes: ``put`` fails with ``ENOSPC`` as the
    write of its temporary file would (nothing of it is left, as :class:`LocalStore` cleans
    up a failed write)."""

    def __init__(self, packages_dir: Path, faults: Faults) -> None:
        super().__init__(packages_dir)
        self.faults = faults

    def put(
        self,
        key: str,
        body: Body,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        sha256: str | None = None,
    ) -> ObjectInfo:
        if self.faults.draw("put", ("enospc",)):
            raise OSError(errno.ENOSPC, "No space left on device (injected)", key)
        return super().put(key, body, if_match=if_match, if_none_match=if_none_match, sha256=sha256)


class ThrottledCalls:
    """A client of a control-plane API (CloudFront's CreateInvalidation, the KeyValueStore's
    DescribeKeyValueStore and UpdateKeys; here their emulations) whose calls of
    ``operations`` are sometimes throttled: answered with the service's throttling error code
    as the call ends once botocore's retries give up on it (standard mode retries both codes:
    ``Throttling`` of CloudFront's XML API, ``ThrottlingException`` of the KeyValueStore's
    JSON API). A throttled call changes nothing."""

    def __init__(
        self, inner: Any, faults: Faults, kind: str, code: str, operations: frozenset[str]
    ) -> None:
        self.inner, self.faults, self.kind, self.code = inner, faults, kind, code
        self.operations = operations

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.inner, name)
        if name not in self.operations:
            return call

        def throttled(**kwargs: Any) -> Any:
            if self.faults.draw(name, (self.kind,)):
                error = {"Code": self.code, "Message": "Rate exceeded"}
                raise ClientError({"Error": error}, name)  # type: ignore[typeddict-item]
            return call(**kwargs)

        return throttled
