"""`skypi token create|list|revoke --table` against a deployed index's token table (moto): the
token it prints works with the API Lambda within its scope, and stops working when revoked."""

from __future__ import annotations

import base64

import pytest

from skypi import cli
from skypi.api import handler as api_handler
from skypi.local.emulator import LambdaContext
from tests.apigw import upload_event
from tests.aws.conftest import Emulated
from tests.dists import wheel_bytes, wheel_name


def _upload(project: str, token: str) -> int:
    authorization = "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()
    data = wheel_bytes(project, "1.0")
    event = upload_event(data, wheel_name(project, "1.0"), project, "1.0", authorization)
    return int(api_handler.handler(event, LambdaContext())["statusCode"])


def test_token_made_with_the_cli_works_against_the_bucket(
    aws: Emulated, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_handler, "_mangum", None)
    table = aws.resources.token_table
    assert cli.main(["token", "create", "--table", table, "--project", "billing-core"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("skypi_")
    assert _upload("billing-core", token) == 200
    assert _upload("ml-models", token) == 403

    assert cli.main(["token", "list", "--table", table]) == 0
    listing = capsys.readouterr().out
    assert token not in listing
    token_id = listing.split()[0]
    assert cli.main(["token", "revoke", token_id, "--table", table]) == 0
    assert _upload("billing-core", token) == 403
