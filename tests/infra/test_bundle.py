"""The Lambda bundle: manylinux wheels for the target, bytecode only for the target's own
Python, nothing the functions do not import, and handlers that run from the bundle alone."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infra import bundling
from infra.bundling import build_bundle, interpreter_for
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


def _magic_of(interpreter: str) -> bytes:
    code = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    out = subprocess.run([interpreter, "-I", "-c", code], capture_output=True, text=True)
    return bytes.fromhex(out.stdout)


def _assert_unchecked_bytecode_for(bundle: Path, magic: bytes) -> None:
    """Every module compiled, each ``.pyc`` for ``magic``'s Python and unchecked-hash
    (PEP 552 flags 0b01: hash-based, never checked against the source)."""
    sources = list((bundle / "skypi").rglob("*.py"))
    assert sources
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        cached = cached.with_name(cached.name.replace(sys.implementation.cache_tag, "*"))
        matches = list(cached.parent.glob(cached.name))
        assert len(matches) == 1, source
        header = matches[0].read_bytes()[:8]
        assert header[:4] == magic, matches[0]
        assert int.from_bytes(header[4:8], "little") == 0b01, matches[0]


def test_bundle_bytecode_is_only_for_the_target_python(lambda_bundle: Path) -> None:
    """Host bytecode for another Python is never shipped: with an interpreter of the target
    version here the bundle is compiled by it, without one it ships sources only."""
    target = interpreter_for(PYTHON_VERSION)
    if target is None:
        assert not list(lambda_bundle.rglob("*.pyc"))
        assert not list(lambda_bundle.rglob("__pycache__"))
    else:
        _assert_unchecked_bytecode_for(lambda_bundle, _magic_of(target))


def test_bundle_is_compiled_by_an_interpreter_of_its_version(host_bundle: Path) -> None:
    """A bundle for this machine's Python is compiled by it: unchecked-hash ``.pyc`` for
    every module, so a read-only ``/var/task`` never compiles at a cold start."""
    _assert_unchecked_bytecode_for(host_bundle, importlib.util.MAGIC_NUMBER)


def test_bundle_has_nothing_local_only(lambda_bundle: Path) -> None:
    assert (lambda_bundle / "skypi" / "indexer" / "handler.py").exists()
    for asset in ("site.css", "site.js"):  # package data: the pages' style and script
        assert (lambda_bundle / "skypi" / "core" / "assets" / asset).is_file()
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
    # PEP 740 (given the assets): a real Sigstore attestation verifies offline, with no
    # writable home (as on Lambda).
    if len(sys.argv) > 2:
        import hashlib, pathlib
        from skypi.api import attest
        assets = pathlib.Path(sys.argv[2])
        real = "pypi_attestations-0.0.19.tar.gz"
        attest.verify(
            [json.loads((assets / (real + ".publish.attestation")).read_text())],
            real,
            hashlib.sha256((assets / real).read_bytes()).hexdigest(),
            {"repository": "trailofbits/pypi-attestations",
             "job_workflow_ref": "trailofbits/pypi-attestations/.github/workflows/release.yml@v"},
        )
    # The pages for people take their style and script from the package's data files.
    from skypi.core.landing import SiteSummary
    from skypi.core.site import render_landing
    landing = render_landing(SiteSummary()).decode()
    outside = sorted({name.split(".")[0] for name, module in sys.modules.items()
                      if getattr(module, "__file__", None) and "site-packages" in module.__file__})
    print(json.dumps({
        "api": api.handler(health, Context()),
        "indexer": indexer.handler(test_event, Context()),
        "from_site_packages": outside,
        "fastapi": sys.modules["fastapi"].__file__,
        "xray": "aws_xray_sdk" in sys.modules,
        "site": sys.modules["skypi.core.site"].__file__,
        "styled": "<style>\\nbody{font:" in landing and "document.body.dataset.root" in landing,
    }))
    """
)


@pytest.fixture(scope="module")
def host_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle for this host (x86_64, this Python), so it can be run here."""
    if sys.platform != "linux" or _elf_machine(Path(sys.executable).resolve()) != X86_64:
        pytest.skip("the runnable bundle is built for x86_64 Linux")
    bundle = tmp_path_factory.mktemp("bundle-host")
    build_bundle(bundle, "x86_64", f"{sys.version_info.major}.{sys.version_info.minor}")
    return bundle


def test_handlers_run_from_the_bundle_alone(host_bundle: Path) -> None:
    bundle = host_bundle
    env = {
        "SKYPI_BUCKET": "skypi-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "skypi",
        "PATH": "/usr/bin:/bin",
        "HOME": "/nonexistent",  # as on Lambda: only /tmp is writable
    }
    assets = Path(__file__).parents[1] / "assets" / "pep740"
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-c", HANDLERS_FROM_BUNDLE, str(bundle), str(assets)],
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
    assert report["xray"] is False  # the X-Ray SDK only with skypi:traceCalls
    assert report["site"].startswith(str(bundle))
    assert report["styled"] is True


def test_the_xray_sdk_is_bundled_only_for_tracing(lambda_bundle: Path, host_bundle: Path) -> None:
    for bundle in (lambda_bundle, host_bundle):
        present = {p.name.split("-")[0].lower() for p in bundle.glob("*.dist-info")}
        assert not present & {"aws_xray_sdk", "wrapt"}
        assert (bundle / "aws_lambda_powertools").is_dir()


def test_handlers_load_the_xray_sdk_only_when_tracing(tmp_path: Path) -> None:
    if sys.platform != "linux" or _elf_machine(Path(sys.executable).resolve()) != X86_64:
        pytest.skip("the runnable bundle is built for x86_64 Linux")
    host_bundle = tmp_path / "bundle-traced"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    build_bundle(host_bundle, "x86_64", version, tracing=True)
    env = {
        "SKYPI_BUCKET": "skypi-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "skypi",
        "PATH": "/usr/bin:/bin",
        "SKYPI_TRACING": "true",
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", HANDLERS_FROM_BUNDLE, str(host_bundle)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["xray"] is True
    assert report["indexer"] == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("kind", "eager"),
    [("on-demand", False), ("provisioned-concurrency", True), ("snap-start", True)],
)
def test_handlers_build_everything_at_import_only_when_initialized_ahead(
    host_bundle: Path, kind: str, eager: bool
) -> None:
    """On demand, the first event builds the indexer and the app; with provisioned
    concurrency or a SnapStart snapshot, initialization is off the request path, so the
    import does it all."""
    script = textwrap.dedent(
        """
        import json, sys
        sys.path = [sys.argv[1]] + [p for p in sys.path if "site-packages" not in p]
        from skypi.api import handler as api
        from skypi.indexer import handler as indexer
        print(json.dumps([api._mangum is not None, indexer._indexer is not None]))
        """
    )
    env = {
        "SKYPI_BUCKET": "skypi-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_INITIALIZATION_TYPE": kind,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(host_bundle)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [eager, eager]


def test_the_asset_hash_follows_the_package_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change to the pages' style alone makes a new asset, so a deploy ships it."""
    package = tmp_path / "functions" / "skypi"
    shutil.copytree(bundling.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(bundling.ROOT / "uv.lock", tmp_path / "uv.lock")
    monkeypatch.setattr(bundling, "ROOT", tmp_path)
    monkeypatch.setattr(bundling, "PACKAGE", package)
    before = bundling.source_hash("arm64", PYTHON_VERSION)
    style = package / "core" / "assets" / "site.css"
    style.write_text(style.read_text() + "a{color:red}\n")
    assert bundling.source_hash("arm64", PYTHON_VERSION) != before
