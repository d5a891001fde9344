"""The real ``uv publish --trusted-publishing always`` against ``skypi serve`` over TLS.

A local OIDC issuer stands in for GitHub Actions: uv asks it for an ID token the way it asks a
runner (``ACTIONS_ID_TOKEN_REQUEST_URL``/``_TOKEN``), skypi fetches its keys over https and
exchanges the token for a short-lived upload token. Every refusal's reason must reach the user
through uv's own output.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dists import make_wheel
from tests.e2e.conftest import BIN, Server, client_env, pip, run, run_cli, start_server, uv
from tests.oidc import (
    REQUEST_TOKEN,
    Issuer,
    Tls,
    github_claims,
    make_attestation,
)

pytestmark = pytest.mark.e2e
AUDIENCE = "skypi-e2e"


@pytest.fixture
def env(tmp_path: Path, tls: Tls, issuer: Issuer) -> dict[str, str]:
    env = client_env(tmp_path)
    env.update(
        SSL_CERT_FILE=str(tls.ca),
        GITHUB_ACTIONS="true",
        ACTIONS_ID_TOKEN_REQUEST_URL=issuer.request_url,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN=REQUEST_TOKEN,
    )
    return env


@pytest.fixture
def https_server(tmp_path: Path, tls: Tls, issuer: Issuer, env: dict[str, str]) -> Iterator[Server]:
    folder = tmp_path / "packages"
    folder.mkdir()
    run_cli(
        "publisher",
        "add",
        "github",
        "octo/demo",
        str(folder),
        "--workflow",
        "release.yml",
        "--owner-id",
        "501",
        "--repository-id",
        "1001",
        "--environment",
        "release",
        "--issuer",
        issuer.url,
        "--project",
        "demo-pkg",
    )
    server = start_server(
        folder,
        tmp_path / "server.log",
        "--tls-cert",
        str(tls.cert),
        "--tls-key",
        str(tls.key),
        "--oidc-audience",
        AUDIENCE,
        env={**env, "SSL_CERT_FILE": str(tls.ca)},  # skypi trusts the issuer's https
        ca=tls.ca,
    )
    yield server
    server.stop()


def _publish(server: Server, env: dict[str, str], dist: Path) -> Any:
    return uv(
        "publish",
        "--publish-url",
        f"{server.url}/legacy/",
        "--trusted-publishing",
        "always",
        *map(str, sorted(dist.iterdir())),
        env=env,
        check=False,
    )


def _dist(tmp_path: Path, version: str, name: str = "demo-pkg") -> Path:
    dist = tmp_path / f"dist-{name}-{version}"
    dist.mkdir()
    make_wheel(dist, name, version)
    return dist


def test_uv_publishes_with_no_secret_and_pip_installs(
    https_server: Server, env: dict[str, str], issuer: Issuer, tmp_path: Path
) -> None:
    result = _publish(https_server, env, _dist(tmp_path, "1.0"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(issuer.issued) == 1  # uv asked the "runner" for a token with our audience
    target = tmp_path / "target"
    pip(
        "install",
        "--no-cache-dir",
        "--index-url",
        f"{https_server.url}/simple/",
        "--cert",
        env["SSL_CERT_FILE"],
        "--target",
        str(target),
        "demo-pkg==1.0",
        env=env,
    )
    assert (target / "demo_pkg" / "__init__.py").is_file()
    (record,) = json.loads(run_cli("token", "list", "--json", str(https_server.folder)).stdout)
    assert record["scopes"] == ["upload"]
    assert record["projects"] == ["demo-pkg"]
    assert record["claims"]["repository_id"] == "1001"
    assert record["claims"]["run_id"] == "42"
    # uv burns the token after publishing (POST /_/oidc/burn-token): it ended right away.
    created, expires = (datetime.fromisoformat(record[k]) for k in ("created", "expires"))
    assert expires - created < timedelta(seconds=30)
    assert "trusted publisher" in run_cli("token", "list", str(https_server.folder)).stdout


def _refused(result: Any, *reasons: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for reason in reasons:
        assert reason in output, output


def test_refusals_reach_uvs_output(
    https_server: Server, env: dict[str, str], issuer: Issuer, tmp_path: Path
) -> None:
    # A token for another repository.
    issuer.claims = {**issuer.claims, "repository": "octo/other", "repository_id": "2002"}
    _refused(
        _publish(https_server, env, _dist(tmp_path, "2.0")),
        "no trusted publisher matches",
        "octo/other",
    )
    issuer.claims = {**issuer.claims, "repository": "octo/demo", "repository_id": "1001"}

    # A token for another audience (another index).
    original = issuer.token
    issuer.token = lambda audience, **kw: original("pypi", **kw)  # type: ignore[method-assign]
    _refused(_publish(https_server, env, _dist(tmp_path, "2.1")), "audience is 'pypi'")

    # An expired token.
    now = int(time.time())
    issuer.token = lambda audience, **kw: original(  # type: ignore[method-assign]
        audience, exp=now - 600, iat=now - 900, nbf=now - 900
    )
    _refused(_publish(https_server, env, _dist(tmp_path, "2.2")), "expired")
    issuer.token = original  # type: ignore[method-assign]

    # A replayed token: the first use publishes, the second is refused.
    assert _publish(https_server, env, _dist(tmp_path, "2.3")).returncode == 0
    issuer.replay = True
    _refused(_publish(https_server, env, _dist(tmp_path, "2.4")), "exchanged already")
    issuer.replay = False

    # The publisher removed in between.
    (publisher_id,) = [
        line.split()[0]
        for line in run_cli("publisher", "list", str(https_server.folder)).stdout.splitlines()
    ]
    run_cli("publisher", "remove", publisher_id, str(https_server.folder))
    _refused(
        _publish(https_server, env, _dist(tmp_path, "2.5")),
        "no trusted publisher is registered for issuer",
    )
    page = httpx.get(
        f"{https_server.url}/simple/demo-pkg/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        verify=ssl.create_default_context(cafile=env["SSL_CERT_FILE"]),
    ).json()
    assert page["versions"] == ["2.3"]  # nothing refused left a file behind


def test_skypi_publish_exchanges_the_ci_identity(
    https_server: Server, env: dict[str, str], issuer: Issuer, tmp_path: Path
) -> None:
    skypi = [str(BIN / "skypi"), "publish", "--url", https_server.url]
    wheel = next(_dist(tmp_path, "3.0").iterdir())
    result = run([*skypi, "--trusted-publishing", "always", str(wheel)], env)
    assert f"published {wheel.name}" in result.stdout
    records = json.loads(run_cli("token", "list", "--json", str(https_server.folder)).stdout)
    assert [r["claims"]["repository"] for r in records] == ["octo/demo"]
    assert datetime.fromisoformat(records[0]["expires"]) <= datetime.now(UTC)  # burnt

    # GitLab CI: the job's token is in <AUDIENCE>_ID_TOKEN (its .gitlab-ci.yml id_tokens).
    run_cli(
        "publisher", "add", "gitlab", "group/sub/demo", str(https_server.folder),
        "--issuer", issuer.url, "--environment", "pypi", "--project", "demo-pkg",
    )  # fmt: skip
    issuer.claims = {
        "sub": "project_path:group/sub/demo:ref_type:tag:ref:v3.1",
        "project_path": "group/sub/demo",
        "ci_config_ref_uri": "gitlab.example/group/sub/demo//.gitlab-ci.yml@refs/tags/v3.1",
        "environment": "pypi",
    }
    gitlab = {k: v for k, v in env.items() if not k.startswith(("GITHUB_", "ACTIONS_"))}
    gitlab.update(GITLAB_CI="true", SKYPI_E2E_ID_TOKEN=issuer.token(AUDIENCE))
    wheel = next(_dist(tmp_path, "3.1").iterdir())
    result = run([*skypi, str(wheel)], gitlab)  # automatic: no token given, a CI identity found
    assert f"published {wheel.name}" in result.stdout
    gitlab["SKYPI_E2E_ID_TOKEN"] = issuer.token(AUDIENCE, environment="staging")
    wheel = next(_dist(tmp_path, "3.2").iterdir())
    refused = run([*skypi, "--trusted-publishing", "always", str(wheel)], gitlab, check=False)
    assert refused.returncode == 2
    assert "no trusted publisher matches" in refused.stderr
    assert "environment 'staging'" in refused.stderr


ASSETS = Path(__file__).parents[1] / "assets" / "pep740"
REAL = "pypi_attestations-0.0.19.tar.gz"  # signed through Sigstore by its GitHub release workflow


def test_uv_sends_attestations_and_skypi_verifies_and_serves_provenance(
    https_server: Server, env: dict[str, str], issuer: Issuer, tmp_path: Path
) -> None:
    run_cli(
        "publisher", "add", "github", "trailofbits/pypi-attestations", str(https_server.folder),
        "--workflow", "release.yml", "--issuer", issuer.url, "--project", "pypi-attestations",
    )  # fmt: skip
    issuer.claims = github_claims(
        "trailofbits/pypi-attestations",
        job_workflow_ref="trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19",
        environment=None,
    )
    dist = tmp_path / "real"
    dist.mkdir()
    # uv sends the <dist>.<kind>.attestation files it finds beside each distribution (PEP 740).
    for name in (REAL, f"{REAL}.publish.attestation"):
        shutil.copy(ASSETS / name, dist / name)
    result = _publish(https_server, env, dist)
    assert result.returncode == 0, result.stdout + result.stderr
    verify = ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
    index = f"{https_server.url}/simple/pypi-attestations/"
    page = httpx.get(
        index, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, verify=verify
    ).json()
    (entry,) = page["files"]
    provenance = httpx.get(httpx.URL(index).join(entry["provenance"]), verify=verify).json()
    (bundle,) = provenance["attestation_bundles"]
    assert bundle["attestations"] == [
        json.loads((dist / f"{REAL}.publish.attestation").read_text())
    ]
    assert bundle["publisher"]["repository"] == "trailofbits/pypi-attestations"


def test_attestations_that_do_not_hold_are_refused_in_uvs_output(
    https_server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    for version, attestation, reason in (
        ("4.0", lambda w, h: make_attestation(w, "0" * 64), "is not the SHA-256"),
        ("4.1", lambda w, h: make_attestation(w, h), "does not verify"),  # unsigned
    ):
        dist = _dist(tmp_path, version)
        (wheel,) = dist.iterdir()
        sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
        (dist / f"{wheel.name}.publish.attestation").write_text(
            json.dumps(attestation(wheel.name, sha256))
        )
        _refused(_publish(https_server, env, dist), reason)


def test_big_files_publish_with_no_secret_on_the_aws_data_path(
    tmp_path: Path, tls: Tls, issuer: Issuer, env: dict[str, str]
) -> None:
    """``skypi dev`` (moto S3 and DynamoDB, the API as on Lambda): a file above Lambda's 6 MB
    payload goes straight to storage with a token minted from the CI identity."""
    import os
    import random

    from tests.dists import wheel_bytes, wheel_name
    from tests.e2e.test_dev import start_dev

    dev_env = {**os.environ, "SSL_CERT_FILE": str(tls.ca)}  # the API fetches the issuer's keys
    with start_dev(tmp_path, env=dev_env) as dev:
        aws = {
            **env,
            "AWS_ENDPOINT_URL": dev.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        run(
            [
                str(BIN / "skypi"), "publisher", "add", "github", "octo/demo",
                "--table", "skypi-dev-publishers", "--workflow", "release.yml",
                "--owner-id", "501", "--repository-id", "1001", "--issuer", issuer.url,
                "--project", "big-model",
            ],
            aws,
        )  # fmt: skip
        wheel = tmp_path / wheel_name("big-model", "1.0")
        wheel.write_bytes(wheel_bytes("big-model", "1.0", blob=random.randbytes(7 * 1024 * 1024)))
        result = run(
            [str(BIN / "skypi"), "publish", str(wheel), "--url", dev.url,
             "--trusted-publishing", "always"],
            env | {"XDG_CACHE_HOME": str(tmp_path / "cache")},
        )  # fmt: skip
        assert f"published {wheel.name}" in result.stdout
        listed, _ = dev.listed("big-model")
        assert listed == {wheel.name}
        tokens = run([str(BIN / "skypi"), "token", "list", "--table", "skypi-dev-tokens"], aws)
        assert "trusted publisher" in tokens.stdout
