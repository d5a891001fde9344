"""On Lambda, every line a ``skypi.*`` logger writes comes out once, as Powertools JSON, with the
invocation's request id (and, behind API Gateway, the request's correlation id).

Each handler runs in a fresh interpreter with the variable the Lambda runtime sets
(``AWS_LAMBDA_FUNCTION_NAME``) and a plain-text root handler like the runtime's, against the
emulated AWS of ``tests/aws/conftest.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from skypi.core.tokens import TokenRecord, new_token
from skypi.local.emulator import sqs_event
from tests.apigw import upload_event
from tests.aws.conftest import Emulated
from tests.conftest import basic
from tests.dists import wheel_bytes, wheel_name

ROOT = Path(__file__).resolve().parents[2]
REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e812345678"

# The runtime's root handler writes plain text; a JSON line written twice would show there too.
_SCRIPT = """
import importlib, json, logging, sys
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="PLAIN %(name)s %(message)s")
from skypi.local.emulator import LambdaContext
module = importlib.import_module(sys.argv[1])
event = json.load(open(sys.argv[2]))
context = LambdaContext(function_name=sys.argv[3], aws_request_id=sys.argv[4])
result = module.handler(event, context)
print("RESULT " + json.dumps(result, default=str))
"""


def _invoke(
    module: str, event: dict[str, Any], function: str, tmp_path: Path
) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    """(the JSON log lines, the handler's answer, stderr) of one cold invocation."""
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    env = {
        **os.environ,
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
    }
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, module, str(path), function, REQUEST_ID],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines, result = [], {}
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
        elif line.startswith("{"):
            lines.append(json.loads(line))
    return lines, result, run.stderr


def _ours(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if str(line.get("name", "")).startswith("skypi.")]


def test_indexer_lines_from_skypi_loggers_carry_the_request_id(
    aws: Emulated, tmp_path: Path
) -> None:
    filename = wheel_name("demo", "1.0")
    aws.drop(f"packages/demo/{filename}", wheel_bytes("demo", "1.0"))
    messages = aws.sqs.receive_message(
        QueueUrl=aws.resources.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=5
    )["Messages"]

    lines, result, stderr = _invoke(
        "skypi.indexer.handler", sqs_event(messages, aws.resources), "skypi-indexer", tmp_path
    )

    assert result == {"batchItemFailures": []}
    ours = _ours(lines)
    assert ours, lines  # the indexer's own module logged what it did
    assert {line["function_request_id"] for line in ours} == {REQUEST_ID}
    assert all(line["service"] == "skypi-indexer" for line in ours)
    assert "PLAIN skypi." not in stderr  # once, not again through the root handler


def test_api_lines_from_skypi_loggers_carry_the_request_and_correlation_ids(
    aws: Emulated, tmp_path: Path
) -> None:
    token = new_token()
    aws.tokens.add(TokenRecord.create(token, name="t", scopes={"upload"}, projects=None))
    data = wheel_bytes("demo", "1.0")
    event = upload_event(
        data, wheel_name("demo", "1.0"), "demo", "1.0", basic(token)["Authorization"]
    )

    lines, result, stderr = _invoke("skypi.api.handler", event, "skypi-api", tmp_path)

    assert result["statusCode"] == 200, result
    ours = _ours(lines)
    assert any(wheel_name("demo", "1.0") in line["message"] for line in ours), lines
    assert {line["function_request_id"] for line in ours} == {REQUEST_ID}
    assert {line["correlation_id"] for line in ours} == {event["requestContext"]["requestId"]}
    assert "PLAIN skypi." not in stderr
    assert token not in json.dumps(lines) + stderr  # invariant 8, on the new path too
