"""A real ``skypi serve`` on a free loopback port, and the real clients pointed at it."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_env(tmp: Path) -> dict[str, str]:
    """The environment with every pip/uv/twine setting of this machine removed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        UV_NO_CONFIG="1",
        UV_CACHE_DIR=str(tmp / "uv-cache"),
        UV_PYTHON=sys.executable,
        NETRC=os.devnull,
        PYTHONWARNINGS="ignore",
    )
    return env


@dataclass
class Server:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    token: str
    args: tuple[str, ...]
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def index(self) -> str:
        return f"{self.url}/simple/"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "skypi"), *args], capture_output=True, text=True, check=True, timeout=60
    )


def start_server(
    folder: Path,
    log: Path,
    *extra: str,
    token: str = "",
    env: dict[str, str] | None = None,
    ca: Path | None = None,
) -> Server:
    """``skypi serve`` on a free port; with ``ca`` (and ``--tls-cert`` in ``extra``) over https."""
    port = free_port()
    out = log.open("ab")
    process = subprocess.Popen(
        [str(BIN / "skypi"), "serve", str(folder), "--port", str(port), *extra],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = Server(folder, port, process, log, token, extra, "https" if ca else "http")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca)) if ca else True
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"skypi serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1, verify=verify).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"skypi serve did not start: {log.read_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    folder = tmp_path / "packages"
    folder.mkdir()
    token = run_cli("token", "create", str(folder), "--scope", "admin").stdout.strip()
    srv = start_server(folder, tmp_path / "server.log", token=token)
    yield srv
    srv.stop()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return client_env(tmp_path)


def run(
    cmd: list[str], env: dict[str, str], check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def pip(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "pip", *args], env, check)


def uv(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "uv"), *args], env, check)


def twine(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "twine"), *args], env, check)


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


__all__ = [
    "Server",
    "client_env",
    "pip",
    "run",
    "run_cli",
    "shutil",
    "start_server",
    "twine",
    "uv",
    "wait_for",
]
