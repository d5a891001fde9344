"""Nothing secret reaches a log line, whatever field it was sent in, and the files that hold
token hashes are private to their owner."""

from __future__ import annotations

import base64
import logging
import stat
from pathlib import Path

import bcrypt
import pytest
from fastapi.testclient import TestClient

from skypi import cli
from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.tokens import new_token
from skypi.store.local import LocalStore
from tests.conftest import add_token
from tests.dists import upload_form, wheel_bytes, wheel_name


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _upload(client: TestClient, headers: dict[str, str]) -> int:
    data = wheel_bytes("lib", "1.0")
    name = wheel_name("lib", "1.0")
    return client.post(
        "/legacy/",
        data=upload_form(data, name, "lib", "1.0"),
        files={"content": (name, data)},
        headers=headers,
    ).status_code


@pytest.mark.parametrize(
    "secret",
    [new_token(), "pypi-AgEIcHlwaS5vcmcCJGFhYmJjY2RkLWVlZmYtMDAxMS0yMjMzLTQ0NTU2Njc3ODg5OQ"],
    ids=["skypi token", "another index's token"],
)
@pytest.mark.parametrize("password", ["x", "wrong-password"])
def test_a_token_sent_as_the_username_is_not_logged(
    store: LocalStore, caplog: pytest.LogCaptureFixture, secret: str, password: str
) -> None:
    client = TestClient(create_app(store, Settings(private=True)))
    caplog.set_level(logging.DEBUG)
    for headers in (_basic(secret, password), _basic(secret + "\u00e9", password)):
        assert _upload(client, headers) in {401, 403}
        assert client.get("/simple/", headers=headers).status_code in {401, 403}
    assert "rejected" in caplog.text  # the failure was logged ...
    assert secret not in caplog.text  # ... without what was sent
    assert secret[8:30] not in caplog.text  # not even a part of it


def test_a_wrong_password_for_a_real_user_names_the_user(
    folder: Path, store: LocalStore, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    entry = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "htpasswd").write_text(f"alice:{entry}\n")
    assert cli.main(["token", "import-htpasswd", str(tmp_path / "htpasswd"), str(folder)]) == 0
    client = TestClient(create_app(store))
    caplog.set_level(logging.DEBUG)
    assert _upload(client, _basic("alice", "nope")) == 403
    assert "user 'alice'" in caplog.text  # an ordinary name is kept, so the log stays useful


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_token_and_state_files_are_private(folder: Path, tmp_path: Path) -> None:
    store = LocalStore(folder)
    add_token(store, "upload")
    entry = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "htpasswd").write_text(f"alice:{entry}\n")
    assert cli.main(["token", "import-htpasswd", str(tmp_path / "htpasswd"), str(folder)]) == 0
    tokens = store.state_dir / "auth" / "tokens.json"
    assert entry in tokens.read_text()  # the bcrypt hash is in there
    assert _mode(tokens) == 0o600
    assert _mode(store.state_dir) == 0o700
    assert _mode(tokens.parent) == 0o700
    client = TestClient(create_app(store, Settings(upload_auth=False)))
    assert _upload(client, {}) == 200
    for path in store.state_dir.rglob("*"):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_an_old_state_folder_is_made_private(folder: Path) -> None:
    state = folder / ".skypi"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    LocalStore(folder)
    assert _mode(state) == 0o700


def test_cli_token_create_writes_a_private_file(folder: Path) -> None:
    assert cli.main(["token", "create", str(folder), "--scope", "read"]) == 0
    assert _mode(folder / ".skypi" / "auth" / "tokens.json") == 0o600
    assert _mode(folder / ".skypi") == 0o700
