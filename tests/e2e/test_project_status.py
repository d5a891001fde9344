"""Index API 1.4 with real clients: pip and uv install from a 1.4 page, uv reads PEP 792's
project status (``uv audit``), a quarantine hides every file, an archive refuses uploads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dists import make_wheel
from tests.e2e.conftest import Server, pip, run_cli, twine, uv
from tests.loopback import serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def osv() -> Iterator[str]:
    """A vulnerability service that knows of none: ``uv audit`` asks one before it reports, and
    this test is about the statuses the index serves, not about OSV."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            queries = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["queries"]
            body = json.dumps({"results": [{"vulns": []} for _ in queries]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as server:
        yield f"{server.url()}/"


def _status(server: Server, status: str, reason: str = "") -> None:
    args = ["status", "demo-status", status, "--url", server.url, "--token", server.token]
    run_cli(*args, *(["--reason", reason] if reason else []))


def test_status_reaches_pip_and_uv(
    server: Server, env: dict[str, str], tmp_path: Path, osv: str
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = make_wheel(dist, "demo-status", "1.0")
    upload = ["upload", "--non-interactive", "--repository-url", f"{server.url}/legacy/"]
    twine(*upload, "-u", "__token__", "-p", server.token, str(wheel), env=env)
    page = httpx.get(
        f"{server.index}demo-status/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    ).json()
    assert page["meta"]["api-version"] == "1.5"
    assert page["project-status"] == {"status": "active"}

    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["demo-status"]\n'
    )
    index = ["--directory", str(project), "--default-index", server.index]
    uv("lock", *index, env=env)  # uv resolves from the 1.4 page
    target = tmp_path / "pip-target"
    pip("install", "--index-url", server.index, "--target", str(target), "demo-status", env=env)
    assert (target / "demo_status").is_dir()

    def audit() -> str:
        result = uv(
            "audit", "--frozen", *index, "--service-url", osv, env=env, check=False,
        )  # fmt: skip
        return result.stdout + result.stderr

    assert "deprecated" not in audit()
    _status(server, "deprecated", "use demo-status2")
    report = audit()
    assert "deprecated" in report
    assert "use demo-status2" in report

    _status(server, "quarantined", "malware found")
    report = audit()
    assert "quarantined" in report
    assert "malware found" in report
    result = uv(
        "pip", "install", "--index-url", server.index, "--target", str(tmp_path / "uv-target"),
        "--no-cache", "demo-status", env=env, check=False,
    )  # fmt: skip
    assert result.returncode != 0  # no file is listed any more
    assert "demo-status" in result.stderr

    _status(server, "archived", "moved to demo-status2")
    newer = make_wheel(dist, "demo-status", "2.0")
    publish = ["publish", "--publish-url", f"{server.url}/legacy/", "--token", server.token]
    refused = uv(*publish, str(newer), env=env, check=False)
    assert refused.returncode != 0
    assert "is archived: moved to demo-status2" in refused.stderr  # uv shows the body
    _status(server, "active")
    twine(*upload, "-u", "__token__", "-p", server.token, str(newer), env=env)
