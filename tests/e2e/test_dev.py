"""``skypi dev`` end to end: the real aws CLI, pip, uv and twine against the emulated stack."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from skypi.core.keys import project_site_key
from tests.dists import make_wheel, wheel_bytes, wheel_name
from tests.e2e.conftest import BIN, free_port, pip, run, twine, uv, wait_for
from tests.emulated import s3_client

pytestmark = pytest.mark.e2e


@dataclass
class Dev:
    url: str
    endpoint: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def index(self) -> str:
        return f"{self.url}/simple/"

    def listed(self, project: str) -> tuple[set[str], set[str]]:
        as_json = httpx.get(
            f"{self.index}{project}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            timeout=10,
        )
        html = httpx.get(f"{self.index}{project}/", headers={"Accept": "text/html"}, timeout=10)
        if as_json.status_code == 404:
            return set(), set()
        return (
            {f["filename"] for f in as_json.json()["files"]},
            set(re.findall(r">([^<]+)</a>", html.text)),
        )


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Dev]:
    with start_dev(tmp_path) as running:
        yield running


@contextmanager
def start_dev(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> Iterator[Dev]:
    """``skypi dev`` on free ports for the ``with`` block; stopped however the block ends
    (a failed assertion, an error while it starts), so no test leaves it running."""
    port, s3_port = free_port(), free_port()
    log = tmp_path / "dev.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(BIN / "skypi"), "dev", "--port", str(port), "--s3-port", str(s3_port), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"skypi dev did not start:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        token = re.search(r"an admin token made for this session: (\S+)\)", log.read_text())
        assert token, log.read_text()
        yield Dev(url, f"http://127.0.0.1:{s3_port}", token.group(1), process, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def _pip_install(
    dev: Dev, project: str, target: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    return pip(
        "install",
        "--no-cache-dir",
        "--index-url",
        dev.index,
        "--target",
        target,
        project,
        env=env,
        check=check,
    )


def _aws(dev: Dev, env: dict[str, str], *args: str) -> None:
    aws_env = env | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    run([str(BIN / "aws"), "--endpoint-url", dev.endpoint, *args], aws_env)


def test_aws_s3_cp_then_pip_and_uv_install_then_aws_s3_rm(
    dev: Dev, env: dict[str, str], tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "dropped-lib", "1.0+local")
    _aws(dev, env, "s3", "cp", str(wheel), "s3://skypi-dev/packages/")
    expected = ({wheel.name}, {wheel.name})
    assert wait_for(lambda: dev.listed("dropped-lib") == expected, timeout=20), dev.log.read_text()
    _pip_install(dev, "dropped-lib", str(tmp_path / "pip"), env)
    assert (tmp_path / "pip" / "dropped_lib" / "__init__.py").exists()
    uv(
        "pip",
        "install",
        "--index-url",
        dev.index,
        "--target",
        str(tmp_path / "uv"),
        "dropped-lib",
        env=env,
    )
    assert (tmp_path / "uv" / "dropped_lib" / "__init__.py").exists()
    # The indexer names the index's address on the page for people, as the API does (on
    # Lambda both are given it): the stored page is the same whichever of them wrote it last.
    stored = s3_client(dev.endpoint).get_object(
        Bucket="skypi-dev", Key=project_site_key("dropped-lib")
    )
    text = stored["Body"].read().decode()
    assert f"{dev.url}/simple/" in text
    assert "INDEX_URL" not in text

    _aws(dev, env, "s3", "rm", f"s3://skypi-dev/packages/{wheel.name}")
    assert wait_for(lambda: dev.listed("dropped-lib") == (set(), set()), timeout=20)
    # ... and the file and its .metadata were invalidated at the emulated CloudFront
    done = "invalidated 2 paths at the CDN"
    assert wait_for(lambda: done in dev.log.read_text(), timeout=20), dev.log.read_text()
    result = _pip_install(dev, "dropped-lib", str(tmp_path / "pip2"), env, check=False)
    assert result.returncode != 0


def test_twine_upload_through_the_api_is_installable_at_once(
    dev: Dev, env: dict[str, str], tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "uploaded-lib", "2.0")
    twine(
        "upload",
        "--non-interactive",
        "--repository-url",
        f"{dev.url}/legacy/",
        "-u",
        "__token__",
        "-p",
        dev.token,
        str(wheel),
        env=env,
    )
    assert dev.listed("uploaded-lib") == ({wheel_name("uploaded-lib", "2.0")},) * 2
    _pip_install(dev, "uploaded-lib", str(tmp_path / "pip"), env)
    assert (tmp_path / "pip" / "uploaded_lib" / "__init__.py").exists()


def test_an_upload_over_lambdas_limit_is_refused_with_the_way_that_works(
    dev: Dev, env: dict[str, str], tmp_path: Path
) -> None:
    import random

    wheel = make_wheel(tmp_path, "huge-lib", "1.0", payload=random.Random(1).randbytes(5_000_000))
    result = twine(
        "upload",
        "--verbose",
        "--non-interactive",
        "--repository-url",
        f"{dev.url}/legacy/",
        "-u",
        "__token__",
        "-p",
        dev.token,
        str(wheel),
        env=env,
        check=False,
    )
    assert result.returncode != 0
    output = " ".join((result.stdout + result.stderr).split())  # twine wraps long lines
    assert "413" in output
    assert "aws s3 cp" in output
    assert dev.listed("huge-lib") == (set(), set())


def test_skypi_publish_of_a_200_mb_wheel_then_pip_install(
    dev: Dev, env: dict[str, str], tmp_path: Path
) -> None:
    import hashlib
    import random

    wheel = tmp_path / wheel_name("big-model", "1.0")
    blob = random.Random(200).randbytes(200 * 1024 * 1024)
    wheel.write_bytes(wheel_bytes("big-model", "1.0", blob=blob))
    del blob
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    small = make_wheel(tmp_path, "small-lib", "1.0")  # one signed PUT, not multipart
    result = run(
        [
            str(BIN / "skypi"),
            "publish",
            str(wheel),
            str(small),
            "--url",
            dev.url,
            "--token",
            dev.token,
        ],
        env | {"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert f"published {wheel.name}" in result.stdout
    assert f"published {small.name}" in result.stdout
    assert dev.listed("small-lib") == ({small.name},) * 2
    page = httpx.get(
        f"{dev.index}big-model/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()
    assert page["files"][0]["hashes"]["sha256"] == digest
    assert page["files"][0]["size"] == wheel.stat().st_size
    _pip_install(dev, "big-model", str(tmp_path / "pip"), env)
    installed = tmp_path / "pip" / "big_model" / "blob.bin"
    assert installed.stat().st_size == 200 * 1024 * 1024
    again = run(
        [str(BIN / "skypi"), "publish", str(wheel), "--url", dev.url, "--token", dev.token], env
    )
    assert f"exists {wheel.name}" in again.stdout


def test_skypi_doctor_passes_against_dev_and_leaves_no_file(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The check a user runs after `cdk deploy`, against the emulated stack in private mode:
    every step passes (none skipped), each is timed, the verdict is the exit status, and
    the throw-away files are gone afterwards."""
    with start_dev(tmp_path, "--private") as dev:
        result = run(
            [str(BIN / "skypi"), "doctor", dev.url, "--token", dev.token, "--wait", "20"],
            env,
        )
        lines = result.stdout.splitlines()
        steps = [line for line in lines if re.match(r"^  (ok  |FAIL|skip) +\d+\.\d\d s  ", line)]
        assert len(steps) == 12, result.stdout
        assert all(line.startswith("  ok") for line in steps), result.stdout
        for needed in ("/legacy/", "presigned", "401", "403", "gzip", ".metadata", "pip", "yank"):
            assert needed in result.stdout, needed
        assert lines[-1].startswith("verdict: healthy, 12 of 12 checks passed")
        auth = ("__token__", dev.token)
        page = httpx.get(
            f"{dev.index}skypi-doctor/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
            auth=auth,
            timeout=10,
        )
        assert page.json()["files"] == []  # deleted; the empty page stays

        wrong = run(
            [str(BIN / "skypi"), "doctor", dev.url, "--token", "skypi_not-a-token"],
            env,
            check=False,
        )
        assert wrong.returncode == 1
        assert "FAIL" in wrong.stdout
        assert wrong.stdout.splitlines()[-1].startswith("verdict: NOT healthy")


def test_on_the_aws_path_a_refusal_points_at_verbose_and_pages_are_served(
    dev: Dev, env: dict[str, str], tmp_path: Path
) -> None:
    """Behind API Gateway no reason phrase can be set: twine then says to retry with
    --verbose, which shows the body. The pages for people come from the bucket, as on AWS."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    wheel = make_wheel(first, "clash-lib", "1.0")
    other = second / wheel.name
    other.write_bytes(wheel_bytes("clash-lib", "1.0", payload=b"other"))
    upload = ["upload", "--non-interactive", "--repository-url", f"{dev.url}/legacy/"]
    upload += ["-u", "__token__", "-p", dev.token]
    twine(*upload, str(wheel), env=env)
    refused = twine(*upload, str(other), env=env, check=False)
    assert refused.returncode == 1
    output = refused.stdout + refused.stderr
    assert "Retry with the --verbose option" in output
    verbose = twine(*upload, "--verbose", str(other), env=env, check=False)
    assert "File already exists" in verbose.stdout + verbose.stderr
    page = httpx.get(f"{dev.url}/project/Clash_Lib/", follow_redirects=True, timeout=10)
    assert page.status_code == 200
    assert wheel.name in page.text
    # the count follows the root listing, rebuilt a few seconds after a new project (as on
    # AWS): it is there once that rebuild ran
    assert wait_for(lambda: "1 project<" in httpx.get(f"{dev.url}/", timeout=10).text, timeout=60)
