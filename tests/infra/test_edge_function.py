"""The CloudFront Function under node, against the same edge vectors the Python edge passes,
and within CloudFront Functions' limits."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from infra.cdn import edge_source
from skypi.core.edge import decide
from skypi.core.http import (
    MAX_LAMBDA_REQUEST_BYTES,
    content_encoding_for_key,
    content_type_for_key,
)
from skypi.core.tokens import TokenRecord
from tests.test_edge_vectors import vector_token

ROOT = Path(__file__).parents[2]
SPEC = json.loads((ROOT / "spec" / "edge-vectors.json").read_text())
NODE = Path(sys.executable).with_name("node")
MAX_FUNCTION_BYTES = 10 * 1024  # CloudFront Functions' code size limit


def _querystring(raw: str) -> dict[str, Any]:
    """CloudFront's shape: name -> {value}, repeated names also under multiValue."""
    result: dict[str, Any] = {}
    for part in filter(None, raw.split("&")):
        name, _, value = part.partition("=")
        if name in result:
            entry = result[name]
            entry.setdefault("multiValue", [{"value": entry["value"]}]).append({"value": value})
        else:
            result[name] = {"value": value}
    return result


def _event(method: str, path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "203.0.113.10"},
        "request": {
            "method": method,
            "uri": path,
            "querystring": _querystring(query),
            "headers": {k.lower(): {"value": v} for k, v in headers.items()},
            "cookies": {},
        },
    }


def mirrored_tokens() -> dict[str, str]:
    """The KeyValueStore as the sync function leaves it: hash -> edge value, for every fixture
    token that was not revoked."""
    store = {}
    for name, spec in SPEC["fixture"]["tokens"].items():
        if spec.get("revoked"):
            continue
        record = TokenRecord.create(
            vector_token(name),
            name=name,
            scopes=set(spec["scopes"]),
            projects=set(spec["projects"]) if spec["projects"] else None,
            expires=datetime(2020, 1, 1, tzinfo=UTC) if spec.get("expired") else None,
        )
        store[record.hash] = record.edge_value()
    return store


def run_function(
    events: list[dict[str, Any]], mode: str = "public", kvs: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    source = edge_source(mode, "kvs-under-test")
    result = subprocess.run(
        [str(NODE), str(ROOT / "tests" / "infra" / "run_edge_function.js")],
        input=json.dumps({"source": source, "events": events, "kvs": kvs or {}}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(result.stdout))


def _basic(value: str) -> str:
    def basic(match: re.Match[str]) -> str:
        pair = f"__token__:{vector_token(match.group(1))}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    return re.sub(r"\{basic:([^}]+)\}", basic, value)


@pytest.fixture(scope="module")
def vector_results() -> list[dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    for mode in ("public", "private"):
        chosen = [(i, v) for i, v in enumerate(SPEC["vectors"]) if v.get("mode", "public") == mode]
        events = [
            _event(
                v["request"]["method"],
                v["request"]["path"],
                v["request"]["query"],
                {k: _basic(h) for k, h in v["request"]["headers"].items()},
            )
            for _, v in chosen
        ]
        answers = run_function(events, mode, mirrored_tokens())
        for (index, _), result in zip(chosen, answers, strict=True):
            results[index] = result
    return [results[i] for i in range(len(SPEC["vectors"]))]


@pytest.mark.parametrize(
    "index", range(len(SPEC["vectors"])), ids=[v["name"] for v in SPEC["vectors"]]
)
def test_vector(index: int, vector_results: list[dict[str, Any]]) -> None:
    """The function decides what the Python edge decides; what it lets through names the
    stored object the vector expects, whose stored Content-Type is the one expected."""
    vector = SPEC["vectors"][index]
    request, expect = vector["request"], vector["expect"]
    python = decide(
        request["method"],
        request["path"],
        request["query"],
        request["headers"].get("accept"),
        request["headers"].get("accept-encoding"),
    )
    result = vector_results[index]
    if "statusCode" in result:  # the function answered itself
        if expect["status"] in {401, 403}:  # refused at the edge, as by the Python edge
            assert result["statusCode"] == expect["status"]
            for name, value in expect["headers"].items():
                assert result["headers"][name]["value"] == value
            return
        assert result["statusCode"] == python.status == expect["status"]
        if python.location is not None:
            assert result["headers"]["location"]["value"] == python.location
            assert expect["headers"].get("location", python.location) == python.location
        return
    key = unquote(result["uri"][1:])
    assert key == python.key
    if expect.get("object"):
        assert key == expect["object"]
    expected_type = expect["headers"].get("content-type")
    if expected_type and expect["status"] in {200, 206}:
        assert content_type_for_key(key) == expected_type  # what S3 will send for it
    if "content-encoding" in expect["headers"]:  # as stored: S3 sends it, CloudFront keeps it
        assert content_encoding_for_key(key) == expect["headers"]["content-encoding"]


def test_uploads_over_lambdas_limit_are_refused_at_the_edge() -> None:
    def upload(length: int) -> dict[str, Any]:
        return _event("POST", "/legacy/", "", {"content-length": str(length)})

    small, big, admin = run_function(
        [
            upload(MAX_LAMBDA_REQUEST_BYTES),
            upload(MAX_LAMBDA_REQUEST_BYTES + 1),
            _event("POST", "/api/projects/x/yank", "", {"content-length": "99999999"}),
        ]
    )
    assert small["uri"] == "/legacy/"  # through to the API
    assert big["statusCode"] == 413
    assert "aws s3 cp" in big["body"]["data"]
    assert admin["uri"] == "/api/projects/x/yank"


def test_an_upload_without_a_length_is_refused_at_the_edge() -> None:
    """A chunked upload declares no Content-Length, so the 413 above cannot see its size,
    and API Gateway would refuse it past 6 MB with an opaque error of its own."""
    chunked, malformed, admin = run_function(
        [
            _event("POST", "/legacy/", "", {"transfer-encoding": "chunked"}),
            _event("POST", "/legacy", "", {"content-length": "12e9"}),
            _event("POST", "/api/uploads", "", {"transfer-encoding": "chunked"}),
        ]
    )
    assert chunked["statusCode"] == 411
    assert "Content-Length" in chunked["body"]["data"]
    assert malformed["statusCode"] == 411
    assert admin["uri"] == "/api/uploads"  # small JSON bodies: API Gateway's own limits hold


@pytest.mark.parametrize("mode", ["public", "private"])
def test_trusted_publishing_and_provenance_pass_to_the_api_unauthenticated(mode: str) -> None:
    paths = [
        ("GET", "/_/oidc/audience"),
        ("POST", "/_/oidc/mint-token"),
        ("POST", "/_/oidc/burn-token"),
        ("GET", "/integrity/demo/1.0/demo-1.0-py3-none-any.whl/provenance"),
    ]
    results = run_function([_event(m, p, "", {}) for m, p in paths], mode=mode)
    assert [r.get("uri") for r in results] == [p for _, p in paths]
    assert all("statusCode" not in r for r in results)


def test_paths_outside_the_index_never_reach_the_bucket() -> None:
    results = run_function(
        [_event("GET", path, "", {}) for path in ("/", "/auth/tokens.json", "/packages/", "/x")]
    )
    assert results[0]["uri"] == "/site/index.html"  # the landing page, never the bucket's root
    assert [r.get("statusCode") for r in results[1:]] == [404, 404, 404]


def test_function_fits_cloudfront_functions_limits() -> None:
    source = edge_source()
    assert len(source.encode()) <= MAX_FUNCTION_BYTES
    assert "__MAX_UPLOAD_REQUEST_BYTES__" not in source
    assert re.search(r"^async function handler\(event\)", source, re.MULTILINE)
    # cloudfront-js-2.0 offers only its own modules; no network, timers or dynamic code.
    imports = re.findall(r"^import .*$", source, re.MULTILINE)
    assert imports == ["import cf from 'cloudfront';", "import crypto from 'crypto';"]
    for forbidden in (
        "require(",
        "export ",
        "module.exports",
        "fetch(",
        "setTimeout",
        "XMLHttpRequest",
        "eval(",
        "new Function",
    ):
        assert forbidden not in source, forbidden
    private = edge_source("private", "kvs-id")
    assert len(private.encode()) <= MAX_FUNCTION_BYTES
    assert not re.search(r"__[A-Z_]+__", private)  # every placeholder filled
