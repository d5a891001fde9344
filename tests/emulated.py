"""Emulated AWS for tests: a moto server on loopback, and buckets in it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import boto3

from skypi.store.s3 import S3Store, s3_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


def s3_client(endpoint: str, **extra: Any) -> S3Client:
    return boto3.client(
        "s3", endpoint_url=endpoint, config=s3_config(endpoint), **CREDENTIALS, **extra
    )


def new_bucket(client: S3Client, versioned: bool = True) -> str:
    name = f"skypi-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def s3_store(endpoint: str, versioned: bool = True) -> S3Store:
    client = s3_client(endpoint)
    return S3Store(new_bucket(client, versioned), client)


class _ErrorBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class FaultInjector:
    """Answers every ``every``-th S3 request with a 503 SlowDown (or a 500) before it is sent,
    the way S3 throttles a hot prefix; botocore's retries must carry the work through."""

    def __init__(self, client: S3Client, every: int = 3, status: int = 503) -> None:
        self.every = every
        self.status = status
        self.sent = 0
        self.injected = 0
        client.meta.events.register_first("before-send.s3.*", self._maybe_fail)

    def _maybe_fail(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        self.sent += 1
        if self.sent % self.every:
            return None
        self.injected += 1
        code = "SlowDown" if self.status == 503 else "InternalError"
        body = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
        return AWSResponse(request.url, self.status, {}, _ErrorBody(body))


class RequestCounter:
    """Records the S3 operations a client makes, with their keys (botocore's event hooks).
    Retries of one call are not counted again: this is the work asked for."""

    def __init__(self, client: S3Client) -> None:
        self.requests: list[tuple[str, str]] = []
        client.meta.events.register("provide-client-params.s3.*", self._count)

    @property
    def calls(self) -> list[str]:
        return [operation for operation, _ in self.requests]

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.requests.append((model.name, str(params.get("Key", params.get("Prefix", "")))))
