"""What the S3 adapter adds to the port's contract (which ``test_store_conformance`` checks)."""

from __future__ import annotations

import gzip
import hashlib
import io

import httpx
import pytest

from skypi.store.base import Presigning, Versioned
from skypi.store.s3 import S3Store
from tests.emulated import FaultInjector, s3_store


@pytest.fixture
def s3(moto_endpoint: str) -> S3Store:
    return s3_store(moto_endpoint)


@pytest.mark.parametrize(
    ("key", "content_type", "cache_control"),
    [
        ("simple/foo/index.json", "application/vnd.pypi.simple.v1+json", "max-age=0"),
        ("simple/foo/index.html", "text/html; charset=utf-8", "max-age=0"),
        ("simple/index.html", "text/html; charset=utf-8", "max-age=0"),
        ("packages/foo/foo-1.0.tar.gz", "application/octet-stream", "immutable"),
        ("packages/foo/foo-1.0-py3-none-any.whl.metadata", "application/octet-stream", "immutable"),
    ],
)
def test_objects_carry_exact_http_headers(
    s3: S3Store, key: str, content_type: str, cache_control: str
) -> None:
    s3.put(key, b"x")
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentType"] == content_type
    assert cache_control in head["CacheControl"]


def test_page_variants_are_stored_gzip_encoded_with_the_pages_type(s3: S3Store) -> None:
    """What S3 (and so CloudFront, which never compresses these types) sends for a page's
    variant: the page's Content-Type, ``Content-Encoding: gzip``, the compressed bytes."""
    page = b'{"meta": {"api-version": "1.1"}, "name": "foo", "files": []}'
    s3.put("simple/foo/index.json.gz", gzip.compress(page))
    head = s3.client.head_object(Bucket=s3.bucket, Key="simple/foo/index.json.gz")
    assert head["ContentType"] == "application/vnd.pypi.simple.v1+json"
    assert head["ContentEncoding"] == "gzip"
    assert gzip.decompress(s3.get("simple/foo/index.json.gz")[1]) == page  # raw, not decoded
    s3.put("packages/foo/foo-1.0.tar.gz", b"x")  # a file named .gz is no variant
    assert "ContentEncoding" not in s3.client.head_object(
        Bucket=s3.bucket, Key="packages/foo/foo-1.0.tar.gz"
    )


def test_sha256_is_stored_with_the_object_and_read_back(s3: S3Store) -> None:
    data = b"wheel bytes"
    digest = hashlib.sha256(data).hexdigest()
    s3.put("packages/foo/foo-1.0.tar.gz", io.BytesIO(data), sha256=digest, if_none_match=True)
    info = s3.head("packages/foo/foo-1.0.tar.gz")
    assert info is not None
    assert info.sha256 == digest
    assert info.size == len(data)


def test_an_overwritten_object_is_restored_from_its_earlier_version(s3: S3Store) -> None:
    assert isinstance(s3, Versioned)
    original = s3.put("packages/foo/foo-1.0.tar.gz", b"original")
    s3.put("packages/foo/foo-1.0.tar.gz", b"impostor")
    assert s3.restore_version("packages/foo/foo-1.0.tar.gz", original.etag)
    info, body = s3.get("packages/foo/foo-1.0.tar.gz")
    assert body == b"original"
    assert info.etag == original.etag
    assert not s3.restore_version("packages/foo/foo-1.0.tar.gz", '"no-such-version"')


def test_presigned_url_fetches_the_object(s3: S3Store) -> None:
    assert isinstance(s3, Presigning)
    s3.put("packages/foo/foo-1.0.tar.gz", b"payload")
    url = s3.presigned_get_url("packages/foo/foo-1.0.tar.gz", 60)
    assert "Signature=" in url or "X-Amz-Signature=" in url
    assert httpx.get(url).content == b"payload"


@pytest.mark.parametrize("status", [503, 500])
def test_throttling_and_server_errors_are_retried(s3: S3Store, status: int) -> None:
    faults = FaultInjector(s3.client, every=2, status=status)
    first = s3.put("simple/foo/index.json", b"1", if_none_match=True)
    s3.put("simple/foo/index.json", b"2", if_match=first.etag)
    assert s3.get("simple/foo/index.json")[1] == b"2"
    assert [i.key for i in s3.list("simple/")] == ["simple/foo/index.json"]
    assert faults.injected >= 2
