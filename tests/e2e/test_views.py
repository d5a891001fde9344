"""Real pip and uv resolving through a view: a cooldown (also one that time alone lifts, with a
clock the test moves), a deny-list, a malware block from OSV data, and a private name that wins
over a hostile upstream's higher version. The upstream is a second real ``skypi serve`` (its
upload times are the files' mtimes) or a static PEP 691 index on loopback; no internet."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.views import parse_policy
from skypi.indexer.views import Views
from skypi.store.local import LocalStore
from tests.dists import make_wheel, wheel_name
from tests.e2e.conftest import free_port, pip, run_cli, start_server, twine, uv, wait_for
from tests.upstream import StaticUpstream

pytestmark = pytest.mark.e2e


def _download(index: str, requirement: str, env: dict[str, str], out: Path) -> list[str]:
    """What pip downloads for ``requirement`` through ``index`` (no dependencies)."""
    pip("download", "--no-deps", "-d", str(out), "--index-url", index, requirement, env=env)
    return sorted(p.name for p in out.iterdir())


def _uv_pin(index: str, requirement: str, env: dict[str, str], tmp: Path) -> str:
    """The version uv resolves ``requirement`` to through ``index``."""
    spec = tmp / f"req-{time.monotonic_ns()}.in"
    spec.write_text(requirement + "\n")
    result = uv("pip", "compile", "--no-header", "--index-url", index, str(spec), env=env)
    pins = [line for line in result.stdout.splitlines() if line and not line.startswith(" ")]
    return pins[0].split("==")[1].strip()


@pytest.fixture
def upstream_skypi(tmp_path: Path) -> Iterator[str]:
    """A second skypi as the upstream: acme-lib 99.0 (the hostile higher version of a private
    name), demo 1.0 (30 days old) and 2.0 (1 day old), evil 1.0, mal-pkg 1.0."""
    folder = tmp_path / "upstream"
    folder.mkdir()
    now = time.time()
    for name, version, age in (
        ("acme-lib", "99.0", 30),
        ("demo", "1.0", 30),
        ("demo", "2.0", 1),
        ("evil", "1.0", 30),
        ("mal-pkg", "1.0", 30),
    ):
        path = make_wheel(folder, name, version)
        os.utime(path, (now - age * 86400, now - age * 86400))
    server = start_server(folder, tmp_path / "upstream.log", "-a", ".")
    yield server.index
    server.stop()


def test_pip_and_uv_resolve_through_a_view_under_its_policy(
    tmp_path: Path, upstream_skypi: str, env: dict[str, str]
) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    run_cli(
        "view", "add", "safe", "--dir", str(folder), "--upstream", upstream_skypi,
        "--cooldown-days", "7", "--deny", "evil",
    )  # fmt: skip
    osv = tmp_path / "mal.json"
    osv.write_text(
        json.dumps(
            {
                "id": "MAL-2026-90002",
                "summary": "Malicious code in mal-pkg (PyPI)",
                "affected": [
                    {"package": {"ecosystem": "PyPI", "name": "mal-pkg"}, "versions": ["1.0"]}
                ],
            }
        )
    )
    assert "1 malicious" in run_cli("view", "osv", str(osv), "--dir", str(folder)).stdout
    run_cli("view", "add", "fresh", "--dir", str(folder), "--upstream", upstream_skypi)
    make_wheel(folder, "acme-lib", "1.0")  # published here: the view never takes it from upstream
    token = run_cli("token", "create", str(folder), "--scope", "upload").stdout.strip()
    server = start_server(folder, tmp_path / "server.log", token=token)
    try:
        view = f"{server.url}/view/safe/simple/"
        assert wait_for(
            lambda: "acme-lib" in (folder / ".skypi" / "simple" / "index.json").read_text()
        )
        assert _download(view, "demo", env, tmp_path / "d1") == [wheel_name("demo", "1.0")]
        assert _uv_pin(view, "demo", env, tmp_path) == "1.0"  # 2.0 is in its cooldown
        assert _download(view, "acme-lib", env, tmp_path / "d2") == [wheel_name("acme-lib", "1.0")]
        assert _uv_pin(view, "acme-lib", env, tmp_path) == "1.0"  # not upstream's 99.0
        for blocked in ("evil", "mal-pkg"):
            failed = pip("download", "--no-deps", "-d", str(tmp_path / "x"), "--index-url", view,
                         blocked, env=env, check=False)  # fmt: skip
            assert failed.returncode != 0
            assert "No matching distribution" in failed.stderr
        fresh = f"{server.url}/view/fresh/simple/"  # no cooldown: the newest
        assert _download(fresh, "demo", env, tmp_path / "d3") == [wheel_name("demo", "2.0")]
        pin = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
        pinned = f"{server.url}/view/fresh@{pin}/simple/"  # as it was 10 days ago
        assert _download(pinned, "demo", env, tmp_path / "d4") == [wheel_name("demo", "1.0")]
        assert _uv_pin(pinned, "demo", env, tmp_path) == "1.0"
        explained = run_cli("view", "explain", "safe", "demo", "--dir", str(folder)).stdout
        assert "cooldown" in explained
        assert "2.0" in explained
        mal = run_cli("view", "explain", "safe", "mal-pkg", "--dir", str(folder)).stdout
        assert "malware: MAL-2026-90002" in mal
        assert (
            "private" in run_cli("view", "explain", "safe", "acme-lib", "--dir", str(folder)).stdout
        )
        # demo, stored by the view "fresh" from upstream, is now uploaded here with twine:
        # the view's stored page goes at once, and the view serves the private file only
        stored = folder / ".skypi" / "views" / "fresh" / "simple" / "demo"
        assert (stored / "index.json").exists()
        (tmp_path / "mine").mkdir()
        wheel = make_wheel(tmp_path / "mine", "demo", "0.5")
        legacy = f"{server.url}/legacy/"
        twine("upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
              legacy, "-u", "__token__", "-p", token, str(wheel), env=env)  # fmt: skip
        assert not [p for p in stored.rglob("*") if p.is_file()]
        assert _download(fresh, "demo", env, tmp_path / "d5") == [wheel_name("demo", "0.5")]
    finally:
        server.stop()


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@contextlib.contextmanager
def in_process(store: LocalStore, views: Views) -> Iterator[int]:
    """``skypi serve``'s app over ``store`` with these ``views``, run by uvicorn in this
    process (so that a test holds its clock or its fills); the port, stopped on the way out."""
    port = free_port()
    app = create_app(store, Settings(), views=views)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_page_lets_a_file_in_when_its_cooldown_ends_by_time_alone(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The server runs in this process so that the test holds its clock; pip and uv are the
    real clients, over HTTP."""
    upstream = StaticUpstream().start()
    clock = _Clock()
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    upstream.add_wheel("demo", "2.0", clock.now - timedelta(days=2))
    store = LocalStore(tmp_path / "packages")
    views = Views(store, clock=clock)
    views.save(parse_policy("safe", {"upstream": upstream.url, "cooldown-days": 7}), new=True)
    stack = contextlib.ExitStack()
    try:
        port = stack.enter_context(in_process(store, views))
        view = f"http://127.0.0.1:{port}/view/safe/simple/"
        assert _download(view, "demo", env, tmp_path / "a") == [wheel_name("demo", "1.0")]
        assert _uv_pin(view, "demo", env, tmp_path) == "1.0"
        clock.now += timedelta(days=5, minutes=1)
        assert _download(view, "demo", env, tmp_path / "b") == [wheel_name("demo", "2.0")]
        assert _uv_pin(view, "demo", env, tmp_path) == "2.0"
        assert upstream.requests.count("/simple/demo/") == 2  # first miss, then one revalidation
    finally:
        stack.close()
        upstream.stop()


def test_a_cached_file_named_malicious_later_is_gone_for_pip_and_its_lock_file(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """pip installs demo 1.0 through the view (cached); a lock file keeps its URL. Then OSV
    data names it MAL-: ``skypi view osv`` makes the view's pages again, the cached copy is
    deleted from the folder, and pip fails both by name and with the lock file's URL, and
    the server never fetches it from upstream again."""
    upstream = StaticUpstream().start()
    try:
        upstream.add_wheel("demo", "1.0", datetime.now(UTC) - timedelta(days=30))
        folder = tmp_path / "packages"
        folder.mkdir()
        run_cli("view", "add", "safe", "--dir", str(folder), "--upstream", upstream.url)
        server = start_server(folder, tmp_path / "server.log")
        try:
            view = f"{server.url}/view/safe/simple/"
            assert _download(view, "demo", env, tmp_path / "a") == [wheel_name("demo", "1.0")]
            cached = folder / ".skypi" / "views" / "safe" / "files" / "demo"
            assert (cached / wheel_name("demo", "1.0")).is_file()
            url = f"{server.url}/view/safe/files/demo/{wheel_name('demo', '1.0')}"
            lock = tmp_path / "requirements.lock"
            lock.write_text(f"demo @ {url}\n")
            osv = tmp_path / "mal.json"
            osv.write_text(json.dumps({
                "id": "MAL-2026-90003", "summary": "Malicious code in demo (PyPI)",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"},
                              "versions": ["1.0"]}],
            }))  # fmt: skip
            out = run_cli("view", "osv", str(osv), "--dir", str(folder)).stdout
            assert "Made 1 stored view page(s) again" in out
            assert not [p for p in cached.rglob("*") if p.is_file()]  # before any read
            asked = len(upstream.requests)
            for args in (("demo",), ("-r", str(lock))):
                failed = pip("download", "--no-deps", "-d", str(tmp_path / "b"), "--index-url",
                             view, *args, env=env, check=False)  # fmt: skip
                assert failed.returncode != 0, failed.stdout
            assert not [r for r in upstream.requests[asked:] if r.startswith("/files/")]
            assert not [p for p in cached.rglob("*") if p.is_file()]
        finally:
            server.stop()
    finally:
        upstream.stop()


def test_pip_and_uv_never_get_a_version_blocked_by_its_severity(
    tmp_path: Path, upstream_skypi: str, env: dict[str, str]
) -> None:
    """demo 2.0 (the newest) has a critical advisory: a view blocking from "high" lists 1.0
    only, in its time-pinned form too; a view without the setting still offers 2.0."""
    folder = tmp_path / "packages"
    folder.mkdir()
    policy = tmp_path / "policy.toml"
    policy.write_text(f'upstream = "{upstream_skypi}"\nblock-severity = "high"\n')
    run_cli("view", "add", "sev", "--dir", str(folder), "--policy", str(policy))
    added = run_cli("view", "add", "crit", "--dir", str(folder), "--upstream", upstream_skypi,
                    "--block-severity", "critical").stdout  # fmt: skip
    assert "block severity critical+ (unrated: blocked)" in added
    run_cli("view", "add", "open", "--dir", str(folder), "--upstream", upstream_skypi)
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
    introduced = {"introduced": "2.0"}  # every version from 2.0 on
    osv = tmp_path / "ghsa.json"
    osv.write_text(
        json.dumps(
            {
                "id": "GHSA-9999-8888-7777",
                "summary": "Remote code execution in demo",
                "severity": [{"type": "CVSS_V3", "score": vector}],
                "database_specific": {"severity": "CRITICAL"},
                "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"},
                              "ranges": [{"type": "ECOSYSTEM", "events": [introduced]}]}],
            }
        )
    )  # fmt: skip
    imported = run_cli("view", "osv", str(osv), "--dir", str(folder)).stdout
    assert "1 of the 1 others rated by severity" in imported
    server = start_server(folder, tmp_path / "server.log")
    try:
        today = datetime.now(UTC).date().isoformat()
        for view in ("sev", "crit", f"sev@{today}"):
            index = f"{server.url}/view/{view}/simple/"
            assert _download(index, "demo", env, tmp_path / view) == [wheel_name("demo", "1.0")]
            assert _uv_pin(index, "demo", env, tmp_path) == "1.0"
            failed = pip("download", "--no-deps", "-d", str(tmp_path / "x"), "--index-url", index,
                         "demo==2.0", env=env, check=False)  # fmt: skip
            assert failed.returncode != 0
            assert "No matching distribution" in failed.stderr
        opened = f"{server.url}/view/open/simple/"
        assert _download(opened, "demo", env, tmp_path / "o") == [wheel_name("demo", "2.0")]
        explained = run_cli("view", "explain", "sev", "demo", "2.0", "--dir", str(folder)).stdout
        assert f"blocked  severity: GHSA-9999-8888-7777 (critical, {vector} = 9.8;" in explained
    finally:
        server.stop()
