"""The mint path through the API Lambda handler: publishers and tokens in DynamoDB (moto)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import jwt
import pytest

from skypi.api import handler as api_handler
from skypi.api.oidc import LEEWAY
from skypi.core.publishers import GitHubPublisher
from skypi.local.emulator import LambdaContext
from skypi.store.dynamo_publishers import DynamoPublisherRepository
from tests.apigw import http_event, upload_event
from tests.aws.conftest import Emulated
from tests.conftest import basic
from tests.dists import wheel_bytes, wheel_name
from tests.emulated import CREDENTIALS
from tests.oidc import Issuer, Tls

AUDIENCE = "index.example"


@pytest.fixture
def api(
    aws: Emulated, monkeypatch: pytest.MonkeyPatch, tls: Tls, moto_endpoint: str
) -> DynamoPublisherRepository:
    monkeypatch.setattr(api_handler, "_mangum", None)
    monkeypatch.setenv("SKYPI_PUBLISHER_TABLE", aws.resources.publisher_table)
    monkeypatch.setenv("SKYPI_OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))  # the issuer's https, as Lambda's CA store
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint, **CREDENTIALS)
    return DynamoPublisherRepository(aws.resources.publisher_table, dynamodb)


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    return api_handler.handler(event, LambdaContext(function_name="skypi-api"))


def _mint(token: str) -> dict[str, Any]:
    body = json.dumps({"token": token}).encode()
    return _invoke(
        http_event(
            "POST",
            "/_/oidc/mint-token",
            headers={"content-type": "application/json"},
            body=body,
        )
    )


def test_mint_through_the_lambda(
    api: DynamoPublisherRepository, aws: Emulated, issuer: Issuer
) -> None:
    audience = _invoke(http_event("GET", "/_/oidc/audience"))
    assert json.loads(audience["body"]) == {"audience": AUDIENCE}
    publisher = GitHubPublisher.create(
        "octo/demo",
        workflow="release.yml",
        projects={"demo"},
        owner_id="501",
        repository_id="1001",
        issuer=issuer.url,
    )
    api.add(publisher)
    oidc_token = issuer.token(AUDIENCE)
    response = _mint(oidc_token)
    assert response["statusCode"] == 200, response["body"]
    minted = json.loads(response["body"])
    assert minted["success"] is True

    data = wheel_bytes("demo", "1.0")
    upload = upload_event(
        data,
        wheel_name("demo", "1.0"),
        "demo",
        "1.0",
        basic(minted["token"])["Authorization"],
    )
    assert _invoke(upload)["statusCode"] == 200

    replay = _mint(oidc_token)
    assert replay["statusCode"] == 422
    assert json.loads(replay["body"])["errors"][0]["code"] == "invalid-reuse-token"

    (record,) = aws.tokens.all()
    assert record.publisher == publisher.id
    assert record.claims is not None
    assert record.claims["repository"] == "octo/demo"
    items = aws.tokens.client.scan(TableName=aws.resources.token_table)["Items"]
    (item,) = items
    assert "edge" not in item  # uploads only: never mirrored to the edge's KeyValueStore
    assert int(item["ttl"]["N"]) > datetime.now(UTC).timestamp() + 80 * 86400  # audit kept
    used = api.client.query(
        TableName=aws.resources.publisher_table,
        KeyConditionExpression="#k = :k",
        ExpressionAttributeNames={"#k": "kind"},
        ExpressionAttributeValues={":k": {"S": "oidc-token"}},
    )["Items"]
    assert len(used) == 1
    exp = jwt.decode(oidc_token, options={"verify_signature": False})["exp"]
    assert int(used[0]["ttl"]["N"]) >= exp + LEEWAY  # kept as long as verification takes it

    assert api.remove(publisher.id).id == publisher.id
    gone = _mint(issuer.token(AUDIENCE))
    assert json.loads(gone["body"])["errors"][0]["code"] == "invalid-publisher"
