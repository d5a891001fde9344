"""The conventions users already have, each with its real client, against a private
``skypi serve``, using the very lines its start banner prints (and the read token in them)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.dists import make_wheel
from tests.e2e.conftest import BIN, client_env, free_port, run, run_cli

pytestmark = pytest.mark.e2e
# poetry lives in a tool environment of its own: in the project's, its httpx2 would switch
# starlette's TestClient (used by other tests) from httpx to httpx2.
POETRY = "poetry==2.5.1"


@pytest.fixture(scope="module")
def poetry_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tools = tmp_path_factory.mktemp("poetry-tool")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    env.update(UV_TOOL_DIR=str(tools / "tools"), UV_TOOL_BIN_DIR=str(tools / "bin"))
    run([str(BIN / "uv"), "tool", "install", "--python", sys.executable, POETRY], env)
    return tools / "bin"


@dataclass
class Private:
    url: str  # as the banner shows it (127.0.0.1)
    port: int
    token: str  # the banner's read token
    lines: list[str]  # the banner's client lines
    folder: Path


def _start_on_a_terminal(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], list[str]]:
    """skypi serve --private with its stderr on a pseudo-terminal, as a person starts it."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [str(BIN / "skypi"), "serve", str(folder), "--private", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    output: list[str] = []

    def drain() -> None:  # keep reading, or the server blocks on a full terminal
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            output.append(chunk.decode(errors="replace"))

    threading.Thread(target=drain, daemon=True).start()
    return process, output


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Private]:
    folder = tmp_path / "packages"
    folder.mkdir()
    make_wheel(folder, "secret-pkg", "1.0")
    port = free_port()
    process, output = _start_on_a_terminal(folder, port)
    deadline = time.monotonic() + 60
    while "then, whichever client you use:" not in "".join(output):
        assert process.poll() is None, "".join(output)
        assert time.monotonic() < deadline, "".join(output)
        time.sleep(0.1)
    while True:  # the banner comes before the server listens
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "".join(output)
            time.sleep(0.1)
    text = "".join(output).replace("\r\n", "\n")
    token = re.search(r"export TOKEN=(skypi_\S+)", text)
    assert token, text
    after = text.split("then, whichever client you use:\n", 1)[1].splitlines()
    lines = [line.strip() for line in after if line.startswith("  ")]
    yield Private(f"http://127.0.0.1:{port}", port, token.group(1), lines, folder)
    process.terminate()
    process.wait(10)


def _line(private: Private, start: str) -> str:
    found = [line for line in private.lines if line.startswith(start)]
    assert len(found) == 1, (start, private.lines)
    return found[0]


def _env(tmp_path: Path, private: Private) -> dict[str, str]:
    env = client_env(tmp_path)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        PATH=f"{BIN}:{env['PATH']}",
        TOKEN=private.token,
        UV_CREDENTIALS_DIR=str(tmp_path / "uv-credentials"),
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
    )
    return env


def _sh(
    line: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )
    assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    return result


def _installs(line: str, env: dict[str, str], target: Path) -> None:
    """A banner install line, with this test's package and target."""
    _sh(line.replace("PACKAGE", f"--no-cache --target {target} secret-pkg"), env)
    assert (target / "secret_pkg" / "__init__.py").exists()


def test_anonymous_reads_are_refused(private: Private) -> None:
    assert httpx.get(f"http://127.0.0.1:{private.port}/simple/").status_code == 401


def test_pip_with_the_token_in_the_url(private: Private, tmp_path: Path) -> None:
    line = _line(private, "pip install --index-url http://__token__:$TOKEN@127.0.0.1")
    _installs(line.replace("--no-cache", "--no-cache-dir"), _env(tmp_path, private), tmp_path / "t")


def test_pip_index_url_from_the_environment(private: Private, tmp_path: Path) -> None:
    line = _line(private, "PIP_INDEX_URL=http://__token__:$TOKEN@127.0.0.1")
    env = _env(tmp_path, private)
    _sh(line.replace("PACKAGE", f"--no-cache-dir --target {tmp_path / 't'} secret-pkg"), env)
    assert (tmp_path / "t" / "secret_pkg").is_dir()


def test_netrc_for_pip_and_uv(private: Private, tmp_path: Path) -> None:
    env = _env(tmp_path, private)
    _sh(_line(private, "printf 'machine 127.0.0.1"), env)
    netrc = Path(env["HOME"]) / ".netrc"
    assert f"password {private.token}" in netrc.read_text()
    env["NETRC"] = str(netrc)
    index = f"{private.url}/simple/"
    target = ["--target", str(tmp_path / "p"), "secret-pkg"]
    run([str(BIN / "pip"), "install", "--no-cache-dir", "--index-url", index, *target], env)
    target = ["--target", str(tmp_path / "u"), "secret-pkg"]
    run([str(BIN / "uv"), "pip", "install", "--index-url", index, *target], env)
    assert (tmp_path / "p" / "secret_pkg").is_dir()
    assert (tmp_path / "u" / "secret_pkg").is_dir()


def test_uv_index_credentials_from_the_environment(private: Private, tmp_path: Path) -> None:
    line = _line(private, "UV_INDEX_SKYPI_USERNAME=__token__ UV_INDEX_SKYPI_PASSWORD=$TOKEN")
    _installs(line, _env(tmp_path, private), tmp_path / "t")


def test_uv_auth_login(private: Private, tmp_path: Path) -> None:
    env = _env(tmp_path, private)
    _sh(_line(private, "uv auth login"), env)
    del env["TOKEN"]  # from here on, only what uv stored
    target = ["--target", str(tmp_path / "t"), "secret-pkg"]
    run([str(BIN / "uv"), "pip", "install", "--index-url", f"{private.url}/simple/", *target], env)
    assert (tmp_path / "t" / "secret_pkg").is_dir()


def test_poetry_http_basic(private: Private, tmp_path: Path, poetry_bin: Path) -> None:
    env = _env(tmp_path, private)
    env.update(
        PATH=f"{poetry_bin}:{env['PATH']}",
        POETRY_CONFIG_DIR=str(tmp_path / "poetry-config"),
        POETRY_CACHE_DIR=str(tmp_path / "poetry-cache"),
        POETRY_DATA_DIR=str(tmp_path / "poetry-data"),
        POETRY_KEYRING_ENABLED="false",
        POETRY_VIRTUALENVS_CREATE="false",
    )
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["secret-pkg"]\n\n[tool.poetry]\npackage-mode = false\n'
    )
    _sh(_line(private, "poetry source add skypi"), env, cwd=project)
    del env["TOKEN"]
    auth = (tmp_path / "poetry-config" / "auth.toml").read_text()
    assert private.token in auth  # kept in poetry's own config, not the project
    assert private.token not in (project / "pyproject.toml").read_text()
    _sh("poetry lock", env, cwd=project)
    lock = (project / "poetry.lock").read_text()
    assert 'name = "secret-pkg"' in lock
    assert "secret_pkg-1.0-py3-none-any.whl" in lock


def test_twine_with_a_pypirc(private: Private, tmp_path: Path) -> None:
    line = _line(private, "twine: in ~/.pypirc")
    repository = re.search(r"repository = (\S+),", line)
    assert repository
    upload = run_cli("token", "create", str(private.folder), "--scope", "upload").stdout.strip()
    env = _env(tmp_path, private)
    (Path(env["HOME"]) / ".pypirc").write_text(
        "[distutils]\nindex-servers = skypi\n\n[skypi]\n"
        f"repository = {repository.group(1)}\nusername = __token__\npassword = {upload}\n"
    )
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = make_wheel(dist, "shared-lib", "2.0")
    _sh("twine upload --non-interactive -r skypi dist/*", env, cwd=tmp_path)
    page = httpx.get(
        f"http://127.0.0.1:{private.port}/simple/shared-lib/", auth=("__token__", private.token)
    )
    assert wheel.name in page.text
