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
from skypi.local.emulator import KeyValueStoreEmulation, LambdaContext
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
    store = KeyValueStoreEmulation()
    KeyValueStoreWriter(KVS_ARN, store).apply(puts, deletes)  # type: ignore[arg-type]
    mirror = store.items
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
    KeyValueStoreWriter(KVS_ARN, store).apply(puts, deletes)  # type: ignore[arg-type]
    mirror = store.items
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


def _value(size: int) -> str:
    """An edge value of exactly ``size`` bytes."""
    head = '{"s":0,"p":["'
    return head + "x" * (size - len(head) - 3) + '"]}'


def test_the_emulated_store_keeps_cloudfronts_limits() -> None:
    """1 KB per value, 512 bytes per key, 5 MB per store, and nothing changes on a refusal
    (CloudFront Developer Guide: KeyValueStore quotas)."""
    from botocore.exceptions import ClientError

    store = KeyValueStoreEmulation()
    writer = KeyValueStoreWriter(KVS_ARN, store)  # type: ignore[arg-type]
    writer.apply({"a" * 64: _value(1024)}, set())
    assert len(store.items["a" * 64]) == 1024

    def update(key: str, value: str) -> None:
        etag = store.describe_key_value_store(KvsARN=KVS_ARN)["ETag"]
        store.update_keys(KvsARN=KVS_ARN, IfMatch=etag, Puts=[{"Key": key, "Value": value}])

    for key, value in [("b" * 64, _value(1025)), ("c" * 513, "{}")]:
        with pytest.raises(ClientError, match="ValidationException"):
            update(key, value)
    assert list(store.items) == ["a" * 64]
    with pytest.raises(ClientError, match="ConflictException"):
        store.update_keys(KvsARN=KVS_ARN, IfMatch="stale", Deletes=[{"Key": "a" * 64}])
    # 5 MB: about 4,800 tokens with the largest record (64-byte key and 1 KB value).
    for start in range(1, 4818, 50):  # 4,818 in all, with the first
        writer.apply(
            {f"{i:064x}": _value(1024) for i in range(start, min(start + 50, 4818))}, set()
        )
    with pytest.raises(ClientError, match="5 MB"):
        update("f" * 64, _value(1024))
    assert store.size <= 5 * 1024 * 1024


def test_a_token_too_large_for_the_edge_is_refused_when_created(
    aws: Emulated, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    projects = [arg for i in range(60) for arg in ("--project", f"project-number-{i}")]
    table = aws.resources.token_table
    assert cli.main(["token", "create", "--table", table, "--scope", "read", *projects]) == 2
    err = capsys.readouterr().err
    assert "limited to 60 projects" in err
    assert "1,024" in err
    assert _stream_records(aws, moto_endpoint) == []  # nothing stored, nothing to mirror
    ok = [arg for i in range(40) for arg in ("--project", f"project-number-{i}")]
    assert cli.main(["token", "create", "--table", table, "--scope", "read", *ok]) == 0


def test_a_record_over_1_kb_is_dropped_from_the_edge_not_retried_forever(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One oversized record (a token stored before create refused them) must not fail the
    batch: UpdateKeys would refuse it on every retry and hold up the stream's shard."""
    store = KeyValueStoreEmulation()
    writer = KeyValueStoreWriter(KVS_ARN, store)  # type: ignore[arg-type]
    writer.apply({"big" + "0" * 61: '{"s":0}'}, set())
    writer.apply(
        {"ok" + "0" * 62: '{"s":0,"p":null,"e":null}', "big" + "0" * 61: _value(1100)}, set()
    )
    assert store.items == {"ok" + "0" * 62: '{"s":0,"p":null,"e":null}'}
    assert "denied at the edge" in caplog.text
