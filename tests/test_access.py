"""Who may do what: htpasswd users for uploads (never reads), tokens everywhere, and nothing
secret in the logs."""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from pathlib import Path

import bcrypt
import pytest
from fastapi.testclient import TestClient

from skypi import cli
from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.tokens import TokenRecord
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
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


# Passwords of every length around bcrypt's 72 bytes, in one- and two-byte characters.
PASSWORDS = ("p", "a" * 71, "b" * 72, "c" * 73, "é" * 36, "é" * 37, "d" * 500, "x" * 4000)


def _as_htpasswd_hashes(password: str) -> str:
    """What `htpasswd -B` (and pypiserver's passlib) stored: the hash of the first 72 bytes."""
    return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(rounds=4)).decode()


def test_passwords_of_any_length_work_or_are_refused_never_a_500(
    tmp_path: Path, folder: Path, store: LocalStore
) -> None:
    lines = [f"user{i}:{_as_htpasswd_hashes(pw)}" for i, pw in enumerate(PASSWORDS)]
    (tmp_path / "htpasswd").write_text("\n".join(lines) + "\n")
    argv = ["token", "import-htpasswd", str(tmp_path / "htpasswd"), str(folder)]
    assert cli.main([*argv, "--scope", "admin"]) == 0
    client = TestClient(create_app(store), raise_server_exceptions=False)
    for number, password in enumerate(PASSWORDS):
        user = f"user{number}"
        assert _upload(client, _login(user, password), f"{number}.0") == 200, len(password)
        wrong = password[:-1] + "!" if len(password.encode()) <= 72 else "!" + password[1:]
        for credentials in (_login(user, wrong), _login("nobody", password)):
            assert _upload(client, credentials, f"{number}.1") == 403
            yank = client.post(
                "/api/projects/team-lib/yank", json={"version": "0.0"}, headers=credentials
            )
            assert yank.status_code == 403
            plan = {"filename": wheel_name("team-lib", "9.0"), "size": 1, "sha256": "0" * 64}
            assert client.post("/api/uploads", json=plan, headers=credentials).status_code == 403
        yank = client.post(
            "/api/projects/team-lib/yank",
            json={"version": f"{number}.0"},
            headers=_login(user, password),
        )
        assert yank.status_code == 200, yank.text


def test_htpasswd_entries_that_are_not_bcrypt_hashes_are_skipped_not_stored(
    tmp_path: Path, folder: Path, store: LocalStore, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _as_htpasswd_hashes("pw")
    (tmp_path / "htpasswd").write_bytes(
        f"alice:{good}\n".encode()
        + b"short:$2y$05$tooshort\n"
        + b"cost:$2y$99$"
        + b"a" * 53
        + b"\n"
        + b"__token__:"
        + good.encode()
        + b"\n"
        + b"latin\xe9:"
        + good.encode()
        + b"\n"
    )
    argv = ["token", "import-htpasswd", str(tmp_path / "htpasswd"), str(folder)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "1 users imported, 4 skipped" in err
    client = TestClient(create_app(store), raise_server_exceptions=False)
    assert _upload(client, _login("alice", "pw"), "1.0") == 200
    assert _upload(client, _login("short", "pw"), "1.1") == 403
    # A record stored before hashes were checked on import: refused, not a 500.
    record = TokenRecord.for_user("old", good, scopes={"upload"}, projects=None)
    TokenRepository(store).add(replace(record, password_hash="$2y$05$tooshort"))
    assert _upload(client, _login("old", "pw"), "1.2") == 403


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs"])
def test_a_private_index_describes_its_api_only_to_readers(store: LocalStore, path: str) -> None:
    """The API's description names every route: on a private index it is read like the index,
    with a read token; a public index shows it to anyone."""
    private = TestClient(create_app(store, Settings(private=True)))
    assert private.get(path).status_code == 401
    assert private.get(path, headers=basic("skypi_not-a-token")).status_code in {401, 403}
    shown = private.get(path, headers=basic(add_token(store, "read")))
    assert shown.status_code == 200
    assert ("openapi" in shown.json()) if path.endswith(".json") else ("swagger" in shown.text)
    assert TestClient(create_app(store, Settings())).get(path).status_code == 200


@pytest.mark.parametrize("route", ["/api/uploads", "/api/uploads/complete"])
def test_the_direct_upload_routes_refuse_a_read_token(store: LocalStore, route: str) -> None:
    """``skypi publish``'s routes (presigned uploads, then their completion) take an upload
    token: a read token is refused before anything is planned or checked, as on /legacy/."""
    import hashlib

    body = {
        "filename": wheel_name("team-lib", "1.0"),
        "size": 10,
        "sha256": hashlib.sha256(b"x").hexdigest(),
        "marker": "m" * 16,
    }
    client = TestClient(create_app(store, Settings()))
    reader = client.post(route, json=body, headers=basic(add_token(store, "read")))
    assert reader.status_code == 403
    assert "isn't allowed to upload" in reader.json()["detail"]
    assert client.post(route, json=body).status_code == 401
    uploader = client.post(route, json=body, headers=basic(add_token(store, "upload")))
    assert uploader.status_code not in {401, 403}  # past the token check (a folder: no plan)
    assert not list(store.packages_dir.rglob("*.whl"))
