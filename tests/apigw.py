"""API Gateway HTTP API (payload format 2.0) events, as the service builds them for Lambda."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.dists import upload_form


def http_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    query: str = "",
) -> dict[str, Any]:
    all_headers = {
        "host": "abc123.execute-api.us-east-1.amazonaws.com",
        "user-agent": "pip/26.0",
        "x-forwarded-proto": "https",
        "x-forwarded-for": "203.0.113.10",
        "x-amzn-trace-id": "Root=1-6741a2b3-0123456789abcdef01234567",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": all_headers["host"],
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "23/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795428000000,
        },
        "isBase64Encoded": body is not None,
    }
    if body is not None:
        all_headers["content-length"] = str(len(body))
        event["body"] = base64.b64encode(body).decode()
    return event


def upload_event(
    data: bytes, filename: str, name: str, version: str, authorization: str
) -> dict[str, Any]:
    """What twine's upload becomes at the Lambda: a base64 multipart body."""
    request = httpx.Request(
        "POST",
        "https://index.example/legacy/",
        data=upload_form(data, filename, name, version),
        files={"content": (filename, data, "application/octet-stream")},
    )
    body = request.read()
    return http_event(
        "POST",
        "/legacy/",
        headers={"content-type": request.headers["content-type"], "authorization": authorization},
        body=body,
    )


def event_size(event: dict[str, Any]) -> int:
    """Bytes of the invocation payload Lambda's 6 MB limit applies to."""
    return len(json.dumps(event, separators=(",", ":")).encode())
