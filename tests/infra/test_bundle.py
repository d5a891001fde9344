"""The Lambda bundle: manylinux wheels for the target, no host bytecode, nothing the functions
do not import, and handlers that run from the bundle alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra.bundling import build_bundle
from infra.functions import PYTHON_VERSION

AARCH64 = 183  # ELF e_machine
X86_64 = 62
LOCAL_ONLY = ("uvicorn", "watchdog", "tqdm", "httpx", "boto3", "s3transfer", "moto")


def _elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def lambda_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle-arm64")
    build_bundle(out, "arm64", PYTHON_VERSION)
    return out


def test_bundle_holds_wheels_for_the_lambda_platform(lambda_bundle: Path) -> None:
    tags = []
    for wheel in lambda_bundle.glob("*.dist-info/WHEEL"):
        tags += [
            line.split(":", 1)[1].strip()
            for line in wheel.read_text().splitlines()
            if line.startswith("Tag:")
        ]
    assert tags
    compiled = [t for t in tags if not t.endswith("-none-any")]
    assert compiled  # pydantic-core at least
    cp = f"cp{PYTHON_VERSION.replace('.', '')}"
    for tag in compiled:
        python, abi, platform = tag.split("-")
        if abi == "abi3":  # stable ABI: built for an older CPython 3, runs on this one
            assert python.startswith("cp3"), tag
        else:
            assert python == cp, tag
        assert "manylinux" in platform, tag
        assert platform.endswith("aarch64"), tag
    shared = list(lambda_bundle.rglob("*.so"))
    assert shared
    assert {_elf_machine(path) for path in shared} == {AARCH64}


def test_bundle_has_no_host_bytecode_and_nothing_local_only(lambda_bundle: Path) -> None:
    assert not list(lambda_bundle.rglob("*.pyc"))
    assert not list(lambda_bundle.rglob("__pycache__"))
    assert (lambda_bundle / "skypi" / "indexer" / "handler.py").exists()
    present = {p.name.split("-")[0].lower() for p in lambda_bundle.glob("*.dist-info")}
    assert not present & set(LOCAL_ONLY)


HANDLERS_FROM_BUNDLE = textwrap.dedent(
    """
    import json, sys
    bundle = sys.argv[1]
    sys.path = [bundle] + [p for p in sys.path if "site-packages" not in p]

    class Context:
        function_name = "skypi"; memory_limit_in_mb = 1024; aws_request_id = "req-1"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:skypi"
        def get_remaining_time_in_millis(self): return 120_000

    from skypi.api import handler as api
    from skypi.indexer import handler as indexer
    health = {"version": "2.0", "routeKey": "$default", "rawPath": "/health",
              "rawQueryString": "", "headers": {"host": "x"}, "isBase64Encoded": False,
              "requestContext": {"http": {"method": "GET", "path": "/health",
                                          "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1"},
                                 "requestId": "r", "stage": "$default"}}
    test_event = {"Records": [{"messageId": "m1", "receiptHandle": "h", "eventSource": "aws:sqs",
                   "body": json.dumps({"Event": "s3:TestEvent", "Bucket": "b"}),
                   "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                   "awsRegion": "us-east-1"}]}
    outside = sorted({name.split(".")[0] for name, module in sys.modules.items()
                      if getattr(module, "__file__", None) and "site-packages" in module.__file__})
    print(json.dumps({
        "api": api.handler(health, Context()),
        "indexer": indexer.handler(test_event, Context()),
        "from_site_packages": outside,
        "fastapi": sys.modules["fastapi"].__file__,
    }))
    """
)


def test_handlers_run_from_the_bundle_alone(tmp_path: Path) -> None:
    """A bundle for this host (x86_64, this Python), so it can be run here."""
    if sys.platform != "linux" or _elf_machine(Path(sys.executable).resolve()) != X86_64:
        pytest.skip("the runnable bundle is built for x86_64 Linux")
    bundle = tmp_path / "bundle-host"
    build_bundle(bundle, "x86_64", f"{sys.version_info.major}.{sys.version_info.minor}")
    env = {
        "SKYPI_BUCKET": "skypi-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "skypi",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-c", HANDLERS_FROM_BUNDLE, str(bundle)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["api"]["statusCode"] == 200
    assert json.loads(report["api"]["body"])["status"] == "ok"
    assert report["indexer"] == {"batchItemFailures": []}
    assert report["from_site_packages"] == []
    assert report["fastapi"].startswith(str(bundle))
