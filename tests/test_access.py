"""Who may do what: htpasswd users for uploads (never reads), tokens everywhere, and nothing
secret in the logs."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import bcrypt
import pytest
from fastapi.testclient import TestClient

from skypi import cli
from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.store.local import LocalStore
from tests.conftest import add_token, basic
from tests.dists import upload_form, wheel_bytes, wheel_name


def _login(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _upload(client: TestClient, headers: dict[str, str], version: str) -> int:
    data = wheel_bytes("team-lib", version)
    filename = wheel_name("team-lib", version)
    return client.post(
        "/legacy/",
        data=upload_form(data, filename, "team-lib", version),
        files={"content": (filename, data)},
        headers=headers,
    ).status_code


@pytest.fixture
def htpasswd(tmp_path: Path) -> Path:
    apache = bcrypt.hashpw(b"alice-pw", bcrypt.gensalt(rounds=4)).decode()
    path = tmp_path / "htpasswd"
    path.write_text(
        "# pypiserver users\n"
        f"alice:{apache.replace('$2b$', '$2y$', 1)}\n"  # as `htpasswd -B` writes it
        "bob:$apr1$abcdefgh$0123456789abcdefghijkl\n"  # MD5: cannot be imported
    )
    return path


def test_htpasswd_users_upload_with_their_passwords_but_never_read(
    folder: Path,
    store: LocalStore,
    htpasswd: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert cli.main(["token", "import-htpasswd", str(htpasswd), str(folder)]) == 1  # bob
    said = capsys.readouterr().err
    assert "skipped line 3 (bob): an MD5 (apr1) entry" in said
    # ... and what to do next, naming this index
    assert "htpasswd -B FILE USER" in said
    assert f"skypi token create {folder} --scope upload --name USER" in said
    client = TestClient(create_app(store, Settings(private=True)))
    caplog.set_level(logging.DEBUG)
    assert _upload(client, _login("alice", "alice-pw"), "1.0") == 200
    assert _upload(client, _login("alice", "alice-pw"), "1.1") == 200  # remembered, not re-hashed
    assert _upload(client, _login("alice", "not-alices-pw"), "1.2") == 403
    assert _upload(client, _login("bob", "bob-pw"), "1.3") == 403
    read = client.get("/simple/team-lib/", headers=_login("alice", "alice-pw"))
    assert read.status_code == 403
    assert "token" in read.text
    token = add_token(store, "read")
    assert client.get("/simple/team-lib/", headers=basic(token)).status_code == 200
    assert client.get("/simple/team-lib/", headers=basic(token + "x")).status_code == 403
    logged = caplog.text
    for secret in ("alice-pw", "not-alices-pw", "bob-pw", token):
        assert secret not in logged
    assert "rejected" in logged  # the failures were logged, without what was sent


def test_a_token_string_cannot_reach_a_users_record(
    folder: Path, store: LocalStore, htpasswd: Path
) -> None:
    cli.main(["token", "import-htpasswd", str(htpasswd), str(folder)])
    client = TestClient(create_app(store))
    sneaky = basic("htpasswd-user:alice")  # hashes to alice's key
    assert _upload(client, sneaky, "2.0") == 403
