"""The uv project of docs/uv-project.md works as written against a private skypi serve."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.dists import make_wheel
from tests.e2e.conftest import BIN, client_env, run, run_cli, start_server

pytestmark = pytest.mark.e2e
DOC = Path(__file__).resolve().parents[2] / "docs" / "uv-project.md"


def test_the_uv_project_example(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    make_wheel(folder, "billing-core", "2.1")
    reader = run_cli("token", "create", str(folder), "--scope", "read").stdout.strip()
    uploader = run_cli("token", "create", str(folder), "--scope", "upload").stdout.strip()
    server = start_server(folder, tmp_path / "server.log", "--private")
    try:
        toml = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.DOTALL)
        assert toml
        text = toml.group(1).replace("https://pypi.example.com", server.url)
        # Hermetic: no public dependency and no build backend to fetch from PyPI.
        text = re.sub(r'\n    "httpx[^\n]*', "", text)
        text = text.split("[build-system]")[0]
        project = tmp_path / "billing-service"
        project.mkdir()
        (project / "pyproject.toml").write_text(text)
        env = client_env(tmp_path)
        env.update(UV_INDEX_SKYPI_USERNAME="__token__", UV_INDEX_SKYPI_PASSWORD=reader)
        # The project's [tool.uv] is the configuration under test; no user config besides it.
        del env["UV_NO_CONFIG"]
        env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
        uv = str(BIN / "uv")
        run([uv, "lock", "--directory", str(project)], env)
        lock = (project / "uv.lock").read_text()
        assert f'source = {{ registry = "{server.url}/simple/" }}' in lock
        assert reader not in lock  # credentials never reach the lock file
        run([uv, "sync", "--locked", "--directory", str(project)], env)
        dist = project / "dist"
        dist.mkdir()
        wheel = make_wheel(dist, "billing-service", "1.4.0")
        env["UV_PUBLISH_TOKEN"] = uploader
        run([uv, "publish", "--index", "skypi", "--directory", str(project)], env)
        page = httpx.get(f"{server.index}billing-service/", auth=("__token__", reader))
        assert wheel.name in page.text
    finally:
        server.stop()
