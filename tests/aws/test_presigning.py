"""Presigned requests as AWS takes them, checked offline with fake credentials (moto
validates no signature, so only the URL's shape can show this).

- SigV4 (``X-Amz-Algorithm=AWS4-HMAC-SHA256``): buckets created since June 2020 refuse SigV2,
  and SigV2 signs none of the create-only conditions.
- The bucket's regional virtual host, ``<bucket>.s3.<region>.amazonaws.com``: the global host
  answers a new bucket outside us-east-1 with a 307 that ``skypi publish`` does not follow,
  and never works in opt-in regions such as ap-east-1.
- Every condition S3 must enforce is a signed header: ``if-none-match`` (create-only),
  ``content-length`` and ``x-amz-checksum-sha256`` (these bytes, no others); a part carries its
  own checksum, which a bucket with Object Lock requires.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from skypi.store.s3 import S3Store, s3_client

BUCKET = "skypi-storageindex0a1b2c3d-1a2b3c4d5e6f"
KEY = "packages/demo/demo-1.0-py3-none-any.whl"
SHA256 = hashlib.sha256(b"demo").hexdigest()
CHECKSUM = base64.b64encode(bytes.fromhex(SHA256)).decode()
REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "ap-east-1"]


@pytest.fixture(params=REGIONS)
def lambda_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    """The store as the Lambda functions build it: from their environment. Lambda sets
    AWS_REGION (the function's, which is the bucket's: one stack)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_REGION", request.param)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("SKYPI_BUCKET", BUCKET)
    return S3Store.from_environment()


def _signed(url: str, region: str) -> tuple[str, set[str], dict[str, list[str]]]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "https"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].endswith(f"/{region}/s3/aws4_request")
    assert "Signature" not in query
    assert "AWSAccessKeyId" not in query
    return parts.netloc, set(query["X-Amz-SignedHeaders"][0].split(";")), query


def test_a_single_put_is_sigv4_on_the_regional_host_with_its_conditions_signed(
    lambda_store: S3Store,
) -> None:
    region = lambda_store.client.meta.region_name
    request = lambda_store.presigned_put(KEY, SHA256, 1234, "marker", 3600)
    host, signed, _ = _signed(request.url, region)
    assert host == f"{BUCKET}.s3.{region}.amazonaws.com"
    assert {"host", "if-none-match", "content-length", "x-amz-checksum-sha256"} <= signed
    # Every header the client is told to send is signed: S3 refuses any other value.
    assert set(request.headers) <= signed
    assert request.headers["x-amz-checksum-sha256"] == CHECKSUM
    assert request.headers["if-none-match"] == "*"
    assert request.headers["content-length"] == "1234"


def test_every_part_is_signed_with_its_length_and_checksum(lambda_store: S3Store) -> None:
    region = lambda_store.client.meta.region_name
    request = lambda_store.presigned_part(KEY, "upload-1", 3, SHA256, 64 * 1024 * 1024, 3600)
    host, signed, query = _signed(request.url, region)
    assert host == f"{BUCKET}.s3.{region}.amazonaws.com"
    assert query["partNumber"] == ["3"]
    assert query["uploadId"] == ["upload-1"]
    assert {"host", "content-length", "x-amz-checksum-sha256"} <= signed
    assert request.headers == {
        "content-length": str(64 * 1024 * 1024),
        "x-amz-checksum-sha256": CHECKSUM,
    }


def test_the_file_redirect_is_sigv4_on_the_regional_host(lambda_store: S3Store) -> None:
    region = lambda_store.client.meta.region_name
    host, signed, query = _signed(lambda_store.presigned_get_url(KEY, 300), region)
    assert host == f"{BUCKET}.s3.{region}.amazonaws.com"
    assert signed == {"host"}
    assert query["X-Amz-Expires"] == ["300"]


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4566", "http://localhost:4566"])
def test_a_custom_endpoint_is_addressed_by_path(endpoint: str) -> None:
    """moto (``skypi dev``): ``<bucket>.localhost`` would resolve nowhere."""
    client = s3_client(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    url = S3Store(BUCKET, client).presigned_get_url(KEY, 60)
    assert url.startswith(f"{endpoint}/{BUCKET}/{KEY}?X-Amz-Algorithm=AWS4-HMAC-SHA256")
