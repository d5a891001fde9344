"""Deleted and restored files leave the CDN's caches (files are cached there for a year):
the API's admin delete, an ``aws s3 rm`` seen by the indexer, and the restore of an
overwritten drop-in each send one CreateInvalidation, for the file and its ``.metadata``.

CloudFront is not emulated: botocore's Stubber checks the calls (the exact request shape
CloudFront's API takes), and moto holds the bucket."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import ANY, Stubber
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.indexer.service import Gone, Indexer, Landed
from skypi.store.cdn import CloudFrontCdn, invalidation_paths
from tests.aws.conftest import Emulated
from tests.dists import wheel_bytes, wheel_name
from tests.emulated import CREDENTIALS

DISTRIBUTION = "E2QWRUHEXAMPLE"


@pytest.fixture
def cloudfront() -> Iterator[tuple[CloudFrontCdn, Stubber]]:
    client = boto3.client("cloudfront", **CREDENTIALS)
    with Stubber(client) as stub:
        yield CloudFrontCdn(DISTRIBUTION, client), stub
        stub.assert_no_pending_responses()


def _expect(stub: Stubber, *paths: str) -> None:
    stub.add_response(
        "create_invalidation",
        {
            "Location": "https://cloudfront.amazonaws.com/x",
            "Invalidation": {
                "Id": "I1",
                "Status": "InProgress",
                "CreateTime": "2026-12-01T00:00:00Z",
                "InvalidationBatch": {
                    "Paths": {"Quantity": len(paths), "Items": list(paths)},
                    "CallerReference": "r",
                },
            },
        },
        {
            "DistributionId": DISTRIBUTION,
            "InvalidationBatch": {
                "Paths": {"Quantity": len(paths), "Items": list(paths)},
                "CallerReference": ANY,
            },
        },
    )


def test_an_admin_delete_invalidates_the_file_and_its_metadata(
    aws: Emulated, cloudfront: tuple[CloudFrontCdn, Stubber]
) -> None:
    cdn, stub = cloudfront
    filename = wheel_name("demo", "1.0+cpu")
    key = f"packages/demo/{filename}"
    aws.drop(key, wheel_bytes("demo", "1.0+cpu"))
    aws.poller.drain()  # indexed; no invalidation for a new file
    client = TestClient(create_app(aws.store, Settings(upload_auth=False), aws.tokens, cdn))
    _expect(stub, f"/{key}*", f"/packages/demo/{filename.replace('+', '%2B')}*")
    assert client.delete(f"/api/projects/demo/files/{filename}").status_code == 200
    stub.assert_no_pending_responses()
    # The delete's own S3 event, replayed, finds nothing left to do: no second invalidation
    # (the stubber would refuse an unexpected call).
    assert not Indexer(aws.store, cdn=cdn).apply([Gone(key)]).removed


def test_an_aws_s3_rm_seen_by_the_indexer_invalidates(
    aws: Emulated, cloudfront: tuple[CloudFrontCdn, Stubber]
) -> None:
    cdn, stub = cloudfront
    aws.indexer.cdn = cdn
    key = f"packages/demo/{wheel_name('demo', '2.0')}"
    aws.drop(key, wheel_bytes("demo", "2.0"))
    aws.indexer.apply([Landed(key)])
    aws.s3.delete_object(Bucket=aws.resources.bucket, Key=key)
    _expect(stub, f"/{key}*")
    aws.indexer.apply([Landed(key)])  # whatever the event said: storage is the truth


def test_restoring_an_overwritten_drop_in_invalidates(
    aws: Emulated, cloudfront: tuple[CloudFrontCdn, Stubber]
) -> None:
    cdn, stub = cloudfront
    indexer = Indexer(aws.store, cdn=cdn)
    key = f"packages/demo/{wheel_name('demo', '3.0')}"
    aws.drop(key, wheel_bytes("demo", "3.0"))
    indexer.apply([Landed(key)])
    aws.drop(key, wheel_bytes("demo", "3.0", payload=b"an impostor"))
    _expect(stub, f"/{key}*")
    outcome = indexer.apply([Landed(key)])
    assert "restored" in outcome.conflicts[0][1]


def test_a_failed_invalidation_is_logged_not_raised(
    cloudfront: tuple[CloudFrontCdn, Stubber], caplog: pytest.LogCaptureFixture
) -> None:
    cdn, stub = cloudfront
    stub.add_client_error(
        "create_invalidation", "TooManyInvalidationsInProgress", http_status_code=400
    )
    cdn.invalidate(["packages/demo/demo-1.0.tar.gz"])
    assert "aws cloudfront create-invalidation" in caplog.text
    assert invalidation_paths([]) == []
