"""The CloudFront Function under node, against the same edge vectors the Python edge passes,
and within CloudFront Functions' limits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from infra.cdn import edge_source
from skypi.core.edge import decide
from skypi.core.http import MAX_LAMBDA_REQUEST_BYTES, content_type_for_key

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


def run_function(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(NODE), str(ROOT / "tests" / "infra" / "run_edge_function.js")],
        input=json.dumps({"source": edge_source(), "events": events}),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(result.stdout))


@pytest.fixture(scope="module")
def vector_results() -> list[dict[str, Any]]:
    events = [
        _event(
            v["request"]["method"],
            v["request"]["path"],
            v["request"]["query"],
            v["request"]["headers"],
        )
        for v in SPEC["vectors"]
    ]
    return run_function(events)


@pytest.mark.parametrize(
    "index", range(len(SPEC["vectors"])), ids=[v["name"] for v in SPEC["vectors"]]
)
def test_vector(index: int, vector_results: list[dict[str, Any]]) -> None:
    """The function decides what the Python edge decides; what it lets through names the
    stored object the vector expects, whose stored Content-Type is the one expected."""
    vector = SPEC["vectors"][index]
    request, expect = vector["request"], vector["expect"]
    python = decide(
        request["method"], request["path"], request["query"], request["headers"].get("accept")
    )
    result = vector_results[index]
    if "statusCode" in result:  # the function answered itself
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


def test_paths_outside_the_index_never_reach_the_bucket() -> None:
    results = run_function(
        [_event("GET", path, "", {}) for path in ("/", "/auth/tokens.json", "/packages/", "/x")]
    )
    assert [r.get("statusCode") for r in results] == [404, 404, 404, 404]


def test_function_fits_cloudfront_functions_limits() -> None:
    source = edge_source()
    assert len(source.encode()) <= MAX_FUNCTION_BYTES
    assert "__MAX_UPLOAD_REQUEST_BYTES__" not in source
    assert re.search(r"^function handler\(event\)", source, re.MULTILINE)
    # cloudfront-js-2.0 has no module system, network, timers or dynamic code.
    for forbidden in (
        "require(",
        "import ",
        "export ",
        "module.exports",
        "fetch(",
        "setTimeout",
        "XMLHttpRequest",
        "eval(",
        "new Function",
    ):
        assert forbidden not in source, forbidden
