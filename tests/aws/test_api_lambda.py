"""The API Lambda through Mangum, driven by API Gateway HTTP API (payload 2.0) events."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.utils import canonicalize_name

from skypi.api import handler as api_handler
from skypi.core.keys import ROOT_JSON_KEY
from skypi.core.pages import ProjectPage, RootListing
from skypi.core.tokens import TokenRecord, new_token
from skypi.local.emulator import LambdaContext
from tests.apigw import event_size, http_event, upload_event
from tests.aws.conftest import Emulated
from tests.conftest import basic
from tests.dists import wheel_bytes, wheel_name

EVENTS = Path(__file__).parents[2] / "events"
V1_JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def api(aws: Emulated, monkeypatch: pytest.MonkeyPatch) -> Emulated:
    monkeypatch.setattr(api_handler, "_mangum", None)
    return aws


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    return api_handler.handler(event, LambdaContext(function_name="skypi-api"))


def _body(response: dict[str, Any]) -> bytes:
    body = response.get("body", "")
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def _token(aws: Emulated) -> str:
    token = new_token()
    aws.tokens.add(TokenRecord.create(token, name="t", scopes={"upload"}, projects=None))
    return basic(token)["Authorization"]


def test_upload_is_indexed_before_the_response(api: Emulated) -> None:
    data = wheel_bytes("demo", "1.0")
    response = _invoke(upload_event(data, wheel_name("demo", "1.0"), "demo", "1.0", _token(api)))
    assert response["statusCode"] == 200, _body(response)
    page = api.page("simple/demo/index.json")
    assert [f.filename for f in ProjectPage.from_json_bytes(page).files] == [
        wheel_name("demo", "1.0")
    ]
    html = api.page("simple/demo/index.html")
    stored = api.store.head(f"packages/demo/{wheel_name('demo', '1.0')}")
    assert stored is not None
    assert stored.sha256 == hashlib.sha256(data).hexdigest()  # sent as ChecksumSHA256
    assert api.poller.drain() == 1  # the S3 event of the upload arrives, and changes nothing
    assert api.page("simple/demo/index.json") == page
    assert api.page("simple/demo/index.html") == html


def test_read_routes_serve_the_stored_pages_and_files(api: Emulated) -> None:
    data = wheel_bytes("demo", "1.0")
    _invoke(upload_event(data, wheel_name("demo", "1.0"), "demo", "1.0", _token(api)))
    as_json = _invoke(http_event("GET", "/simple/demo/", headers={"accept": V1_JSON}))
    assert as_json["statusCode"] == 200
    assert as_json["headers"]["content-type"] == V1_JSON
    assert not as_json["isBase64Encoded"]
    assert json.loads(as_json["body"])["files"][0]["filename"] == wheel_name("demo", "1.0")
    as_html = _invoke(http_event("GET", "/simple/demo/"))
    assert as_html["headers"]["content-type"] == "text/html; charset=utf-8"
    assert as_html["headers"]["vary"] == "Accept, Accept-Encoding"
    assert "content-encoding" not in as_html["headers"]
    gzipped = _invoke(
        http_event("GET", "/simple/demo/", headers={"accept": V1_JSON, "accept-encoding": "gzip"})
    )
    assert gzipped["headers"]["content-encoding"] == "gzip"
    assert gzipped["isBase64Encoded"]  # API Gateway decodes it back to the gzip bytes
    assert gzip.decompress(base64.b64decode(gzipped["body"])) == api.page("simple/demo/index.json")
    assert wheel_name("demo", "1.0") in as_html["body"]
    redirect = _invoke(http_event("GET", "/simple/Demo"))
    assert (redirect["statusCode"], redirect["headers"]["location"]) == (301, "/simple/demo/")
    file = _invoke(http_event("GET", f"/packages/demo/{wheel_name('demo', '1.0')}"))
    assert file["statusCode"] == 200
    assert _body(file) == data
    metadata = _invoke(http_event("GET", f"/packages/demo/{wheel_name('demo', '1.0')}.metadata"))
    assert b"Name: demo" in _body(metadata)
    assert _invoke(http_event("GET", "/simple/nope/"))["statusCode"] == 404


def test_the_lambdas_read_path_decodes_once(api: Emulated) -> None:
    """The read path decides on the event's ``rawPath``, decoded once, as at the edge (Mangum
    itself sets no raw path and decodes ``requestContext.http.path`` again)."""
    data = wheel_bytes("demo", "1.0")
    _invoke(upload_event(data, wheel_name("demo", "1.0"), "demo", "1.0", _token(api)))
    wheel = wheel_name("demo", "1.0")
    assert _invoke(http_event("GET", f"/packages/demo/{wheel}"))["statusCode"] == 200
    assert _invoke(http_event("GET", f"/packages/demo%2F{wheel}"))["statusCode"] == 200
    assert _invoke(http_event("GET", f"/packages/demo/{wheel}%252e"))["statusCode"] == 400
    assert _invoke(http_event("GET", f"/packages/demo/{wheel}%zz"))["statusCode"] == 400
    assert _invoke(http_event("GET", f"/packages/demo/../demo/{wheel}"))["statusCode"] == 404
    assert _invoke(http_event("GET", "/%73imple/demo/"))["statusCode"] == 404


def test_sample_get_event_runs(api: Emulated) -> None:
    api.drop(f"packages/demo/{wheel_name('demo', '1.0+local')}", wheel_bytes("demo", "1.0+local"))
    api.poller.drain()
    event = json.loads((EVENTS / "apigw-v2-get-simple-json.json").read_text())
    response = _invoke(event)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["name"] == "demo"


def test_files_above_the_response_limit_redirect_to_a_presigned_url(api: Emulated) -> None:
    big = wheel_bytes("big", "1.0", payload=_noise(5 * 1024 * 1024))
    assert len(big) > api_handler.REDIRECT_OVER_BYTES
    key = f"packages/big/{wheel_name('big', '1.0')}"
    api.drop(key, big)
    api.poller.drain()
    response = _invoke(http_event("GET", "/" + key))
    assert response["statusCode"] == 307
    assert response["headers"]["cache-control"] == "no-store"
    assert httpx.get(response["headers"]["location"]).content == big
    small = _invoke(http_event("GET", f"/{key}.metadata"))  # small objects still come through
    assert small["statusCode"] == 200


def test_a_page_above_the_response_limit_redirects_with_its_negotiated_type(api: Emulated) -> None:
    """A root listing of 30,000 projects is past what the function may answer (Lambda's 6 MB
    response, base64 included): it is answered with a presigned URL whose response overrides
    carry the type the client negotiated, so pip still sees the PEP 691 JSON it asked for."""
    listing = RootListing().with_projects(
        {canonicalize_name(f"p{i}"): (f"P{i}", "x" * 150) for i in range(30_000)}
    )
    raw = listing.to_json_bytes()
    assert len(raw) > api_handler.REDIRECT_OVER_BYTES
    api.store.put(ROOT_JSON_KEY, raw)
    response = _invoke(http_event("GET", "/simple/", headers={"accept": V1_JSON}))
    assert response["statusCode"] == 307
    assert response["headers"]["cache-control"] == "no-store"
    assert response["headers"]["vary"] == "Accept, Accept-Encoding"
    fetched = httpx.get(response["headers"]["location"])
    assert fetched.headers["content-type"] == V1_JSON
    assert len(json.loads(fetched.content)["projects"]) == 30_000
    etag = api.store.head(ROOT_JSON_KEY).etag  # a revalidation is still answered by the function
    again = http_event("GET", "/simple/", headers={"accept": V1_JSON, "if-none-match": etag})
    assert _invoke(again)["statusCode"] == 304


def _payload_for_request_size(target: int, authorization: str) -> tuple[int, dict[str, Any]]:
    """The largest wheel whose twine-shaped upload request is at most ``target`` bytes (the
    request grows one for one with an incompressible payload, so a few steps converge)."""
    payload, best = target, (0, {})
    for _ in range(8):
        data = wheel_bytes("edge", "1.0", payload=_noise(payload))
        event = upload_event(data, wheel_name("edge", "1.0"), "edge", "1.0", authorization)
        excess = int(event["headers"]["content-length"]) - target
        if excess <= 0:
            best = max(best, (len(data), event), key=lambda pair: pair[0])
            if excess > -16:
                break
        payload -= excess if excess > 0 else excess // 2
    assert best[0], "no payload fitted"
    return best


def _noise(size: int) -> bytes:
    import random

    return random.Random(size).randbytes(size)


def test_largest_upload_fits_lambda_and_one_more_byte_gets_a_clear_413(api: Emulated) -> None:
    authorization = _token(api)
    file_size, event = _payload_for_request_size(api_handler.MAX_REQUEST_BYTES, authorization)
    assert event_size(event) <= api_handler.LAMBDA_PAYLOAD_LIMIT
    response = _invoke(event)
    assert response["statusCode"] == 200, _body(response)
    assert file_size > 4_600_000  # the figure docs/aws-runtime.md states

    data = wheel_bytes("edge", "1.1", payload=_noise(file_size + 200))
    too_big = upload_event(data, wheel_name("edge", "1.1"), "edge", "1.1", authorization)
    assert int(too_big["headers"]["content-length"]) > api_handler.MAX_REQUEST_BYTES
    response = _invoke(too_big)
    assert response["statusCode"] == 413
    message = _body(response).decode()
    assert "aws s3 cp" in message
    assert f"s3://{api.resources.bucket}/packages/" in message
    assert api.store.head(f"packages/edge/{wheel_name('edge', '1.1')}") is None


def test_an_upload_without_content_length_gets_411_not_a_silent_pass(api: Emulated) -> None:
    """As at the edge: a chunked body's size cannot be checked against the ceiling."""
    data = wheel_bytes("edge", "2.0")
    chunked = upload_event(data, wheel_name("edge", "2.0"), "edge", "2.0", _token(api))
    del chunked["headers"]["content-length"]
    chunked["headers"]["transfer-encoding"] = "chunked"
    response = _invoke(chunked)
    assert response["statusCode"] == 411
    assert "Content-Length" in _body(response).decode()
    assert api.store.head(f"packages/edge/{wheel_name('edge', '2.0')}") is None


def test_sample_upload_event_runs(api: Emulated) -> None:
    token = "skypi_sample-token-for-events-only-never-valid-on-a-real-index"
    api.tokens.add(TokenRecord.create(token, name="sample", scopes={"upload"}, projects=None))
    response = _invoke(json.loads((EVENTS / "apigw-v2-upload.json").read_text()))
    assert response["statusCode"] == 200, _body(response)
    assert api.store.head(f"packages/demo/{wheel_name('demo', '2.0')}") is not None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/legacy/"),
        ("GET", "/simple/"),
        ("DELETE", f"/api/projects/demo/files/{wheel_name('demo', '1.0')}"),
    ],
)
@pytest.mark.parametrize("joiner", [",", ", "])
def test_two_authorization_headers_joined_by_api_gateway_are_a_400(
    api: Emulated, method: str, path: str, joiner: str
) -> None:
    """API Gateway's HTTP API (payload 2.0) joins a repeated header's values with commas into
    one (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
    No Basic or Bearer credential holds a comma, so the joined value is two headers: the
    400 the local server and the CloudFront Function give, whichever of them would pass."""
    good = _token(api)
    upload = upload_event(
        wheel_bytes("demo", "1.0"), wheel_name("demo", "1.0"), "demo", "1.0", good
    )
    for joined in (f"{good}{joiner}{good}", f"{good}{joiner}Basic eDp5"):
        event = upload if method == "POST" else http_event(method, path)
        event["headers"]["authorization"] = joined
        response = _invoke(event)
        assert response["statusCode"] == 400, _body(response)
        assert b"send one Authorization header, not several" in _body(response)
    assert api.store.head(f"packages/demo/{wheel_name('demo', '1.0')}") is None


def test_the_api_app_does_not_import_what_only_views_need() -> None:
    """Views are served by ``skypi serve``; the API Lambda's app (made at its first event)
    loads none of them."""
    views = "{'skypi.api.views', 'skypi.indexer.views', 'skypi.core.viewpolicy', 'skypi.core.osv'}"
    code = f"import sys, skypi.api.app; print(sorted(set(sys.modules) & {views}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
