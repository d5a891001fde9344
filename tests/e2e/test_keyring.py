"""pip's keyring support against ``skypi serve --private``: with ``https://__token__@host`` as the
index URL, pip sends an empty password and asks its keyring only when that gets a 401 (a 403
would end the install), so an empty password must be "no credentials", not "wrong ones"."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.dists import make_wheel
from tests.e2e.conftest import pip, run_cli, start_server

pytestmark = pytest.mark.e2e

# A real keyring backend (keyring's plugin interface, chosen with PYTHON_KEYRING_BACKEND): it
# holds one password, and notes every question it is asked.
BACKEND = """
import json, os
from keyring.backend import KeyringBackend

class FileBackend(KeyringBackend):
    priority = 1

    def get_password(self, service, username):
        with open(os.environ["SKYPI_TEST_KEYRING_LOG"], "a") as log:
            log.write(json.dumps([service, username]) + "\\n")
        stored = json.load(open(os.environ["SKYPI_TEST_KEYRING"]))
        return stored.get(username)

    def set_password(self, service, username, password):
        raise NotImplementedError

    def delete_password(self, service, username):
        raise NotImplementedError
"""


def test_pip_asks_its_keyring_for_the_token(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "private"
    folder.mkdir()
    make_wheel(folder, "kept-secret", "1.0")
    reader = run_cli("token", "create", str(folder), "--scope", "read").stdout.strip()
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "skypi_test_keyring.py").write_text(BACKEND)
    (tmp_path / "keyring.json").write_text(f'{{"__token__": "{reader}"}}')
    log = tmp_path / "keyring.log"
    # pip's subprocess provider skips a `keyring` in its own environment's scripts: put one
    # elsewhere on PATH, as a pipx-installed keyring would be.
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "keyring").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m keyring "$@"\n')
    (tools / "keyring").chmod(0o755)
    env = {
        **env,
        "PYTHON_KEYRING_BACKEND": "skypi_test_keyring.FileBackend",
        "PYTHONPATH": str(tmp_path / "backend"),
        "SKYPI_TEST_KEYRING": str(tmp_path / "keyring.json"),
        "SKYPI_TEST_KEYRING_LOG": str(log),
        "PATH": f"{tools}{os.pathsep}{env.get('PATH', '')}",
    }
    srv = start_server(folder, tmp_path / "server.log", "--private")
    try:
        empty = httpx.get(srv.index, auth=("__token__", ""), timeout=5)
        assert empty.status_code == 401
        assert empty.headers["www-authenticate"] == 'Basic realm="skypi"'
        index = f"http://__token__@127.0.0.1:{srv.port}/simple/"
        for provider in ("subprocess", "import"):  # the keyring CLI, and keyring in pip's process
            log.unlink(missing_ok=True)
            pip(
                "install",
                "--no-cache-dir",
                "--keyring-provider",
                provider,
                "--index-url",
                index,
                "--target",
                str(tmp_path / provider),
                "kept-secret",
                env=env,
            )
            assert (tmp_path / provider / "kept_secret").is_dir()
            assert '"__token__"' in log.read_text()  # the password came from the keyring
    finally:
        srv.stop()
