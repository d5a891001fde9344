"""Tokens at the edge: `skypi token create|revoke` on the table (moto) → its stream → the
KeyValueStore mirror → the CloudFront Function; and the same token in the API Lambda."""

from __future__ import annotations

import base64
import logging
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from skypi import cli
from skypi.api import handler as api_handler
from skypi.core.tokens import hash_token
from skypi.edge_tokens import handler as sync_handler
from skypi.edge_tokens.sync import KeyValueStoreWriter, changes
from skypi.local.emulator import LambdaContext
from tests.apigw import http_event, upload_event
from tests.aws.conftest import Emulated
from tests.dists import wheel_bytes, wheel_name
from tests.emulated import CREDENTIALS
from tests.infra.test_edge_function import _event, run_function

KVS_ARN = "arn:aws:cloudfront::123456789012:key-value-store/0123abcd-0000-0000-0000-000000000000"


def _stream_records(aws: Emulated, endpoint: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, **CREDENTIALS)
    arn = aws.tokens.client.describe_table(TableName=aws.resources.token_table)["Table"][
        "LatestStreamArn"
    ]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    return records


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()


def _edge_status(token: str, path: str, mirror: dict[str, str]) -> int:
    (result,) = run_function(
        [_event("GET", path, "", {"authorization": _basic(token)})], "private", mirror
    )
    return int(result.get("statusCode", 200))  # a request let through reaches S3


def test_a_cli_token_works_at_the_edge_and_in_the_api_within_its_scope(
    aws: Emulated,
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(api_handler, "_mangum", None)
    monkeypatch.setenv("SKYPI_PRIVATE", "true")
    table = aws.resources.token_table
    read_only = ["--scope", "read", "--project", "billing-core"]
    assert cli.main(["token", "create", "--table", table, *read_only]) == 0
    token = capsys.readouterr().out.strip()

    puts, deletes = changes(_stream_records(aws, moto_endpoint))
    assert set(puts) == {hash_token(token)}
    assert not deletes
    assert token not in str(puts)  # the mirror holds hashes, never tokens
    mirror = dict(puts)
    assert _edge_status(token, "/simple/billing-core/", mirror) == 200
    assert _edge_status(token, "/packages/billing-core/billing_core-1.0.tar.gz", mirror) == 200
    assert _edge_status(token, "/simple/ml-models/", mirror) == 403

    data = wheel_bytes("billing-core", "1.0")
    upload = upload_event(
        data, wheel_name("billing-core", "1.0"), "billing-core", "1.0", _basic(token)
    )
    assert api_handler.handler(upload, LambdaContext())["statusCode"] == 403  # read only
    assert (
        cli.main(
            ["token", "create", "--table", table, "--scope", "upload", "--project", "billing-core"]
        )
        == 0
    )
    uploader = capsys.readouterr().out.strip()
    upload["headers"]["authorization"] = _basic(uploader)
    assert api_handler.handler(upload, LambdaContext())["statusCode"] == 200
    page = http_event("GET", "/simple/billing-core/", headers={"authorization": _basic(token)})
    assert api_handler.handler(page, LambdaContext())["statusCode"] == 200
    other = http_event("GET", "/simple/ml-models/", headers={"authorization": _basic(token)})
    assert api_handler.handler(other, LambdaContext())["statusCode"] == 403

    assert cli.main(["token", "list", "--table", table]) == 0
    token_id = next(
        line.split()[0]
        for line in capsys.readouterr().out.splitlines()
        if hash_token(token).startswith(line.split()[0])
    )
    assert cli.main(["token", "revoke", token_id, "--table", table]) == 0
    puts, deletes = changes(_stream_records(aws, moto_endpoint))
    for key in deletes:
        mirror.pop(key, None)
    mirror.update(puts)
    assert _edge_status(token, "/simple/billing-core/", mirror) == 403
    assert api_handler.handler(page, LambdaContext())["statusCode"] == 403
    logged = capsys.readouterr()  # the Lambdas' log lines, since the CLI printed the tokens
    for secret in (token, uploader):
        assert secret not in logged.out + logged.err + caplog.text


def test_sync_handler_writes_the_changes_with_the_stores_etag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = boto3.client("cloudfront-keyvaluestore", **CREDENTIALS)
    writer = KeyValueStoreWriter(KVS_ARN, client)
    monkeypatch.setattr(sync_handler, "_writer", writer)
    insert = {
        "eventName": "INSERT",
        "dynamodb": {"Keys": {"hash": {"S": "aa"}}, "NewImage": {"edge": {"S": '{"s":0}'}}},
    }
    touch = {
        "eventName": "MODIFY",
        "dynamodb": {
            "Keys": {"hash": {"S": "bb"}},
            "NewImage": {"edge": {"S": "x"}},
            "OldImage": {"edge": {"S": "x"}},
        },
    }
    remove = {"eventName": "REMOVE", "dynamodb": {"Keys": {"hash": {"S": "cc"}}}}
    describe = {
        "ETag": "e1",
        "ItemCount": 1,
        "TotalSizeInBytes": 1,
        "KvsARN": KVS_ARN,
        "Created": "2026-11-23T00:00:00Z",
    }
    with Stubber(client) as stub:
        stub.add_response("describe_key_value_store", describe, {"KvsARN": KVS_ARN})
        stub.add_client_error("update_keys", "ConflictException", http_status_code=409)
        stub.add_response(
            "describe_key_value_store", describe | {"ETag": "e2"}, {"KvsARN": KVS_ARN}
        )
        stub.add_response(
            "update_keys",
            {"ETag": "e3", "ItemCount": 1, "TotalSizeInBytes": 1},
            {
                "KvsARN": KVS_ARN,
                "IfMatch": "e2",
                "Puts": [{"Key": "aa", "Value": '{"s":0}'}],
                "Deletes": [{"Key": "cc"}],
            },
        )
        sync_handler.handler({"Records": [insert, touch, remove]}, LambdaContext())
        stub.assert_no_pending_responses()
