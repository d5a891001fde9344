"""The API Lambda's upload metrics: one embedded-metric-format (EMF) record per invocation, as
CloudWatch reads it from the function's output, with what that upload was."""

from __future__ import annotations

import json
from typing import Any

import pytest

from skypi.api import handler as api_handler
from skypi.core.tokens import TokenRecord, new_token
from skypi.local.emulator import LambdaContext
from tests.apigw import http_event, upload_event
from tests.aws.conftest import Emulated
from tests.conftest import basic
from tests.dists import wheel_bytes, wheel_name


@pytest.fixture
def api(aws: Emulated, monkeypatch: pytest.MonkeyPatch) -> Emulated:
    monkeypatch.setattr(api_handler, "_mangum", None)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    api_handler.metrics.clear_metrics()  # what invocations with metrics disabled left behind
    return aws


def _emf(
    event: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the handler's answer, the EMF records it printed)."""
    capsys.readouterr()
    response = api_handler.handler(event, LambdaContext(function_name="skypi-api"))
    records = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return response, records


def _metrics(record: dict[str, Any]) -> dict[str, tuple[list[float], str]]:
    """Name → (values, unit) of one EMF record, read as CloudWatch reads it (a member is a
    value or an array of values)."""
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "skypi"
    assert ["service"] in directive["Dimensions"]
    assert record["service"] == "api"
    values = {m["Name"]: record[m["Name"]] for m in directive["Metrics"]}
    return {
        m["Name"]: (v if isinstance(v := values[m["Name"]], list) else [v], m["Unit"])
        for m in directive["Metrics"]
    }


def _token(aws: Emulated) -> str:
    token = new_token()
    aws.tokens.add(TokenRecord.create(token, name="t", scopes={"upload"}, projects=None))
    return basic(token)["Authorization"]


def test_an_accepted_upload_counts_once_with_its_bytes_and_latency(
    api: Emulated, capsys: pytest.CaptureFixture[str]
) -> None:
    filename = wheel_name("demo", "1.0")
    event = upload_event(wheel_bytes("demo", "1.0"), filename, "demo", "1.0", _token(api))

    response, records = _emf(event, capsys)

    assert response["statusCode"] == 200
    (record,) = records  # flushed once, for this invocation
    metrics = _metrics(record)
    assert metrics["Uploads"] == ([1.0], "Count")
    body_bytes = int(event["headers"]["content-length"])
    assert metrics["UploadBytes"] == ([float(body_bytes)], "Bytes")
    (latency,), unit = metrics["UploadLatency"]
    assert unit == "Milliseconds"
    assert latency > 0
    assert "UploadsRefused" not in metrics


def test_a_refused_upload_counts_as_refused(
    api: Emulated, capsys: pytest.CaptureFixture[str]
) -> None:
    filename = wheel_name("demo", "1.0")
    wrong = basic(new_token())["Authorization"]  # a token the index never issued
    event = upload_event(wheel_bytes("demo", "1.0"), filename, "demo", "1.0", wrong)

    response, records = _emf(event, capsys)

    assert response["statusCode"] == 403
    (record,) = records
    metrics = _metrics(record)
    assert metrics["UploadsRefused"] == ([1.0], "Count")
    assert "Uploads" not in metrics
    assert "UploadBytes" not in metrics


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_read_records_no_upload_metric(api: Emulated, capsys: pytest.CaptureFixture[str]) -> None:
    response, records = _emf(http_event("GET", "/simple/"), capsys)
    assert response["statusCode"] in {200, 404}
    assert records == []
