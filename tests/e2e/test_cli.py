"""The ``skypi`` command tried as a new user would: typos, busy ports, pipes, and no server.
Every case runs the real command as a subprocess and expects one clear line, not a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from skypi.core.tokens import TokenRecord, new_token
from tests.dists import wheel_bytes, wheel_name
from tests.e2e.conftest import BIN, Server, free_port, run_cli, start_server, wait_for

pytestmark = pytest.mark.e2e


def skypi(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "skypi"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def _one_clear_line(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 or lines[0].startswith("usage:"), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def test_serve_refuses_a_missing_folder(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    result = skypi("serve", str(typo), "--port", str(free_port()))
    _one_clear_line(result, str(typo), "--create")
    assert not typo.exists()


def test_serve_create_makes_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    server = start_server(folder, tmp_path / "server.log", "--create")
    try:
        assert folder.is_dir()
        assert httpx.get(server.index, timeout=5).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    "args",
    [
        ("token", "create"),
        ("token", "list"),
        ("token", "revoke", "abc"),
        ("reindex",),
        ("reindex", "--check"),
    ],
    ids=" ".join,
)
def test_commands_refuse_a_missing_folder_and_create_nothing(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = skypi(*args, cwd=tmp_path)  # the default folder, ./packages, is not there
    _one_clear_line(result, "./packages")
    assert list(tmp_path.iterdir()) == []
    elsewhere = tmp_path / "typo"
    result = skypi(*args, str(elsewhere), cwd=tmp_path)
    _one_clear_line(result, str(elsewhere))
    assert not elsewhere.exists()


@pytest.mark.parametrize(("args", "code"), [(("list",), 0), (("revoke", "abc"), 1)], ids=str)
def test_token_commands_on_a_folder_that_is_not_an_index_make_nothing_in_it(
    tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an index")
    result = skypi("token", *args, str(folder))
    assert result.returncode == code, result.stderr
    assert "not a skypi index yet" in result.stderr
    assert f"skypi token create {folder}" in result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_ports_are_validated(tmp_path: Path, port: str) -> None:
    result = skypi("serve", str(tmp_path), "--port", port)
    assert result.returncode == 2
    assert "not a port" in result.stderr
    assert "1 to 65535" in result.stderr
    assert "serving" not in result.stderr


def test_a_port_in_use_is_one_error_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = skypi("serve", str(tmp_path), "--port", str(port))
    _one_clear_line(result, f"127.0.0.1:{port}", "address already in use", "--port")
    assert "serving" not in result.stderr + result.stdout


def test_the_banner_comes_once_listening(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "skypi"), "serve", str(tmp_path), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: "skypi is serving" in log.read_text(), timeout=30), log.read_text()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # accepted at once: the banner never promises a port that is not open
        assert f":{port}/simple/" in log.read_text()
    finally:
        process.terminate()
        process.wait(10)


def test_expires_in_must_be_positive(tmp_path: Path) -> None:
    for days in ("0", "-3", "soon"):
        result = skypi("token", "create", str(tmp_path), "--expires-in", days)
        assert result.returncode == 2
        assert "--expires-in" in result.stderr
        assert "1 or more" in result.stderr
        assert result.stdout == ""  # no token printed
    assert not (tmp_path / ".skypi" / "auth" / "tokens.json").exists()
    listed = run_cli("token", "create", str(tmp_path), "--expires-in", "1")
    assert listed.stdout.startswith("skypi_")


def test_yank_and_delete_without_a_server_say_so_in_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (
        ("yank", "foo", "1.0", "--token", "t"),
        ("unyank", "foo", "1.0", "--token", "t"),
        ("delete", "foo", "foo-1.0.tar.gz", "--token", "t"),
    ):
        result = skypi(*args, env={"SKYPI_URL": url})
        _one_clear_line(result, url, "--url")
        result = skypi(*args, "--url", url)
        _one_clear_line(result, url)


@pytest.fixture
def admin_server(tmp_path: Path) -> Server:
    folder = tmp_path / "packages"
    folder.mkdir()
    (folder / wheel_name("foo", "1.0")).write_bytes(wheel_bytes("foo", "1.0"))
    token = run_cli("token", "create", str(folder), "--scope", "admin").stdout.strip()
    return start_server(folder, tmp_path / "server.log", token=token)


def test_yank_and_delete_find_the_server_as_publish_does(admin_server: Server) -> None:
    """No --url: $SKYPI_URL, as for skypi publish (and the same default address)."""
    env = {"SKYPI_URL": admin_server.url, "SKYPI_TOKEN": admin_server.token}
    try:
        yanked = skypi("yank", "foo", "1.0", "--reason", "broken", env=env)
        assert yanked.returncode == 0, yanked.stderr
        assert "yanked foo-1.0-py3-none-any.whl" in yanked.stdout
        deleted = skypi("delete", "foo", wheel_name("foo", "1.0"), env=env)
        assert deleted.returncode == 0, deleted.stderr
        missing = skypi("delete", "foo", wheel_name("foo", "1.0"), env=env)
        assert missing.returncode == 1
        assert missing.stderr.startswith("skypi: 404: No file")
    finally:
        admin_server.stop()


def test_token_list_into_a_closed_pipe(tmp_path: Path) -> None:
    """`skypi token list --json | head`: head exits early; skypi must end quietly."""
    records = [
        TokenRecord.create(new_token(), name=f"t{i}", scopes={"read"}, projects=None).to_json()
        for i in range(2000)  # far more than a pipe buffers (64 KiB)
    ]
    auth = tmp_path / ".skypi" / "auth"
    auth.mkdir(parents=True)
    (auth / "tokens.json").write_text(json.dumps({"tokens": records}))
    for extra in (["--json"], []):
        writer = subprocess.Popen(
            [str(BIN / "skypi"), "token", "list", str(tmp_path), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert writer.stdout is not None
        assert writer.stderr is not None
        head = subprocess.Popen(["head", "-n", "2"], stdin=writer.stdout, stdout=subprocess.PIPE)
        writer.stdout.close()  # only head holds the pipe: once it exits, writes fail (EPIPE)
        shown, _ = head.communicate(timeout=60)
        errors = writer.stderr.read().decode()
        assert writer.wait(60) == 1
        assert "BrokenPipeError" not in errors, errors
        assert "Traceback" not in errors, errors
        assert errors.strip() == "", errors
        assert len(shown.splitlines()) == 2


def test_the_server_log_never_shows_a_token(tmp_path: Path) -> None:
    """Whatever field a token arrives in (the username, the URL), the log has none of it."""
    folder = tmp_path / "packages"
    folder.mkdir()
    log = tmp_path / "server.log"
    server = start_server(folder, log, "--log-level", "debug")
    secret = new_token()
    try:
        as_user = httpx.post(f"{server.url}/legacy/", auth=(secret, "pw"), timeout=10)
        assert as_user.status_code == 403
        in_url = httpx.get(f"{server.index}?token={secret}", timeout=10)
        assert in_url.status_code == 200
        pasted = "ghp_" + "Ab1" * 12  # another service's token, pasted as a username
        assert httpx.post(f"{server.url}/legacy/", auth=(pasted, "x"), timeout=10).status_code
    finally:
        server.stop()
    text = log.read_text()
    assert "rejected a login" in text
    assert "GET /simple/?token=skypi_…" in text  # the access log line, redacted
    assert "Logging error" not in text  # ...and formatted, not a traceback of the formatter
    assert secret not in text
    assert secret[6:20] not in text
    assert pasted not in text


def test_token_revoke_takes_the_id_first_and_forgives_the_old_order(tmp_path: Path) -> None:
    for order in ("id first", "folder first"):
        created = skypi("token", "create", str(tmp_path), "--name", order)
        token_id = created.stderr.split()[1]
        args = (token_id, str(tmp_path)) if order == "id first" else (str(tmp_path), token_id)
        revoked = skypi("token", "revoke", *args)
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout.strip() == f"Revoked token {token_id} {order}"
    assert "No tokens" in skypi("token", "list", str(tmp_path)).stderr
