"""Real pip, uv and twine against a running ``skypi serve``."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.dists import make_sdist, make_wheel
from tests.e2e.conftest import (
    BIN,
    Server,
    pip,
    run,
    run_cli,
    start_server,
    twine,
    uv,
    wait_for,
)

pytestmark = pytest.mark.e2e


def _twine_upload(server: Server, env: dict[str, str], *files: Path) -> None:
    twine(
        "upload",
        "--non-interactive",
        "--repository-url",
        f"{server.url}/legacy/",
        "-u",
        "__token__",
        "-p",
        server.token,
        *map(str, files),
        env=env,
    )


def _installed(target: Path, module: str) -> str:
    text = (target / module / "__init__.py").read_text()
    return text.splitlines()[0].split("=", 1)[1].strip().strip("'\"")


def _page(server: Server, project: str, json_page: bool) -> httpx.Response:
    accept = "application/vnd.pypi.simple.v1+json" if json_page else "text/html"
    return httpx.get(f"{server.index}{project}/", headers={"Accept": accept}, timeout=10)


def test_twine_upload_then_pip_and_uv_install(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    make_wheel(dist, "Demo.Lib", "1.0", requires_python=">=3.8")
    make_sdist(dist, "Demo.Lib", "1.0")
    make_wheel(dist, "demo-app", "2.0", requires=("demo-lib>=1.0",))
    _twine_upload(server, env, *sorted(dist.iterdir()))

    pip_target = tmp_path / "pip-target"
    result = pip(
        "install",
        "-v",
        "--no-cache-dir",
        "--index-url",
        server.index,
        "--target",
        str(pip_target),
        "demo-app",
        env=env,
    )
    assert _installed(pip_target, "demo_app") == "2.0"
    assert _installed(pip_target, "demo_lib") == "1.0"
    assert ".whl.metadata" in result.stdout + result.stderr  # PEP 658 used, not the wheel

    uv_target = tmp_path / "uv-target"
    uv(
        "pip",
        "install",
        "--index-url",
        server.index,
        "--target",
        str(uv_target),
        "demo-app",
        env=env,
    )
    assert _installed(uv_target, "demo_lib") == "1.0"

    # The HTML page, parsed by uv as a flat index (find-links).
    flat = tmp_path / "uv-flat"
    uv(
        "pip",
        "install",
        "--no-index",
        "--find-links",
        f"{server.index}demo-lib/",
        "--target",
        str(flat),
        "demo-lib",
        env=env,
    )
    assert _installed(flat, "demo_lib") == "1.0"

    for json_page in (True, False):
        page = _page(server, "demo-lib", json_page)
        assert page.status_code == 200
        assert "demo_lib-1.0.tar.gz" in page.text
        assert "demo_lib-1.0-py3-none-any.whl" in page.text


def test_uv_publish_and_require_hashes(server: Server, env: dict[str, str], tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = make_wheel(dist, "hashy", "0.3")
    uv(
        "publish",
        "--publish-url",
        f"{server.url}/legacy/",
        "--token",
        server.token,
        str(wheel),
        env=env,
    )
    # Re-publishing the identical file is a success (idempotent, for CI re-runs).
    uv(
        "publish",
        "--publish-url",
        f"{server.url}/legacy/",
        "--token",
        server.token,
        str(wheel),
        env=env,
    )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    requirements = tmp_path / "req.txt"
    requirements.write_text(f"hashy==0.3 --hash=sha256:{digest}\n")
    pip(
        "install",
        "--no-cache-dir",
        "--require-hashes",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "t"),
        "-r",
        str(requirements),
        env=env,
    )
    requirements.write_text(f"hashy==0.3 --hash=sha256:{'0' * 64}\n")
    bad = pip(
        "install",
        "--no-cache-dir",
        "--require-hashes",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "t2"),
        "-r",
        str(requirements),
        env=env,
        check=False,
    )
    assert bad.returncode != 0
    assert "DO NOT MATCH THE HASHES" in bad.stderr


def test_yanked_release_is_skipped_unless_pinned(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    _twine_upload(server, env, make_wheel(dist, "yanky", "1.0"), make_wheel(dist, "yanky", "2.0"))
    run_cli(
        "yank",
        "yanky",
        "2.0",
        "--reason",
        "broken & bad",
        "--url",
        server.url,
        "--token",
        server.token,
    )
    target = tmp_path / "t1"
    pip(
        "install",
        "--no-cache-dir",
        "--index-url",
        server.index,
        "--target",
        str(target),
        "yanky",
        env=env,
    )
    assert _installed(target, "yanky") == "1.0"
    uv(
        "pip",
        "install",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "u1"),
        "yanky",
        env=env,
    )
    assert _installed(tmp_path / "u1", "yanky") == "1.0"
    pinned = pip(
        "install",
        "--no-cache-dir",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "t2"),
        "yanky==2.0",
        env=env,
    )
    assert _installed(tmp_path / "t2", "yanky") == "2.0"
    assert "broken & bad" in pinned.stderr
    run_cli("unyank", "yanky", "2.0", "--url", server.url, "--token", server.token)
    pip(
        "install",
        "--no-cache-dir",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "t3"),
        "yanky",
        env=env,
    )
    assert _installed(tmp_path / "t3", "yanky") == "2.0"


def test_uv_exclude_newer_uses_upload_time(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    _twine_upload(server, env, make_wheel(dist, "timely", "1.0"))
    before = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = uv(
        "pip",
        "install",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "a"),
        "--exclude-newer",
        before,
        "timely",
        env=env,
        check=False,
    )
    assert old.returncode != 0
    uv(
        "pip",
        "install",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "b"),
        "--exclude-newer",
        after,
        "timely",
        env=env,
    )
    assert _installed(tmp_path / "b", "timely") == "1.0"


def test_copied_file_is_installable_within_seconds(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    wheel = make_wheel(staging, "dropped", "0.1")
    (server.folder / "nested").mkdir()
    shutil.copy(wheel, server.folder / "nested" / wheel.name)
    assert wait_for(
        lambda: "dropped-0.1" in _page(server, "dropped", True).text.replace("_", "-"), timeout=20
    )
    pip(
        "install",
        "--no-cache-dir",
        "--index-url",
        server.index,
        "--target",
        str(tmp_path / "t"),
        "dropped",
        env=env,
    )
    (server.folder / "nested" / wheel.name).unlink()
    assert wait_for(
        lambda: json.loads(_page(server, "dropped", True).text)["files"] == [], timeout=20
    )
    assert "dropped" not in httpx.get(server.index, timeout=5).text


def test_restart_loses_nothing(server: Server, env: dict[str, str], tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    _twine_upload(server, env, make_wheel(dist, "durable", "1.0"))
    before = _page(server, "durable", True).json()
    server.stop()
    again = start_server(server.folder, server.log, token=server.token)
    try:
        assert again.process.poll() is None
        assert _page(again, "durable", True).json() == before
        pip(
            "install",
            "--no-cache-dir",
            "--index-url",
            again.index,
            "--target",
            str(tmp_path / "t"),
            "durable",
            env=env,
        )
    finally:
        again.stop()


def test_private_mode_needs_credentials(tmp_path: Path, env: dict[str, str]) -> None:
    folder = tmp_path / "private"
    folder.mkdir()
    make_wheel(folder, "secret-pkg", "1.0")
    reader = run_cli("token", "create", str(folder), "--scope", "read").stdout.strip()
    srv = start_server(folder, tmp_path / "private.log", "-a", "download,list,update")
    try:
        anonymous = httpx.get(f"{srv.index}secret-pkg/", timeout=5)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Basic")
        wrong = httpx.get(f"{srv.index}secret-pkg/", auth=("__token__", "skypi_nope"), timeout=5)
        assert wrong.status_code == 403
        index = f"http://__token__:{reader}@127.0.0.1:{srv.port}/simple/"
        pip(
            "install",
            "--no-cache-dir",
            "--index-url",
            index,
            "--target",
            str(tmp_path / "t"),
            "secret-pkg",
            env=env,
        )
        uv(
            "pip",
            "install",
            "--index-url",
            index,
            "--target",
            str(tmp_path / "u"),
            "secret-pkg",
            env=env,
        )
    finally:
        srv.stop()


def test_first_start_explains_how_to_upload(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    srv = start_server(folder, tmp_path / "fresh.log", "--create")  # a new index
    try:
        text = srv.log.read_text()
    finally:
        srv.stop()
    assert "skypi token create" in text
    assert f"twine upload --repository-url http://127.0.0.1:{srv.port}/legacy/" in text


def test_skypi_publish_to_a_folder_index_goes_through_legacy(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "published-lib", "1.0", requires_python=">=3.9")
    skypi = [str(Path(sys.executable).with_name("skypi")), "publish", "--url", server.url]
    result = run([*skypi, "--token", server.token, str(wheel)], env)
    assert f"published {wheel.name}" in result.stdout
    listed = _page(server, "published-lib", json_page=True).json()["files"]
    assert listed[0]["requires-python"] == ">=3.9"
    again = run([*skypi, "--token", server.token, str(wheel)], env)
    assert f"exists {wheel.name}" in again.stdout
    other = tmp_path / "other"
    other.mkdir()
    impostor = make_wheel(other, "published-lib", "1.0", payload=b"other bytes")
    refused = run([*skypi, "--token", server.token, str(impostor)], env, check=False)
    assert refused.returncode == 1
    assert "File already exists" in refused.stderr
    denied = run([*skypi, "--token", "skypi_wrong", str(wheel)], env, check=False)
    assert denied.returncode == 2
    assert "403" in denied.stderr
    # A corrupt file is one line naming it and why, as against `skypi dev`; no traceback.
    corrupt = tmp_path / "corrupt" / "published_lib-2.0-py3-none-any.whl"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not a zip at all")
    broken = run([*skypi, "--token", server.token, str(corrupt)], env, check=False)
    assert broken.returncode == 1
    assert f"refused {corrupt.name}: Invalid distribution file" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_pip_and_uv_read_the_gzip_variants(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    """pip and uv send ``Accept-Encoding: gzip`` and get a page's stored gzip variant: with the
    uncompressed pages emptied, they still find the file, so what they read was the variant."""
    dist = tmp_path / "dist"
    dist.mkdir()
    make_wheel(dist, "zipped-demo", "1.0")
    _twine_upload(server, env, *dist.iterdir())
    pages = server.folder / ".skypi" / "simple" / "zipped-demo"
    assert {p.name for p in pages.iterdir()} >= {"index.json.gz", "index.html.gz"}
    empty = json.loads((pages / "index.json").read_text()) | {"files": []}
    (pages / "index.json").write_text(json.dumps(empty))
    for name in ("index.html", "index.v1html"):
        (pages / name).write_text("<!DOCTYPE html><html><body></body></html>\n")
    identity = httpx.get(
        f"{server.index}zipped-demo/", headers={"Accept-Encoding": "identity"}, timeout=10
    )
    assert "zipped_demo" not in identity.text  # the uncompressed page lists nothing now
    compressed = httpx.get(f"{server.index}zipped-demo/", timeout=10)  # gzip, as clients ask
    assert compressed.headers["content-encoding"] == "gzip"
    assert "zipped_demo-1.0-py3-none-any.whl" in compressed.text

    pip_target = tmp_path / "pip-target"
    pip(
        "install",
        "--no-cache-dir",
        "--index-url",
        server.index,
        "--target",
        str(pip_target),
        "zipped-demo",
        env=env,
    )
    assert _installed(pip_target, "zipped_demo") == "1.0"
    uv_target = tmp_path / "uv-target"
    uv(
        "pip",
        "install",
        "--index-url",
        server.index,
        "--target",
        str(uv_target),
        "zipped-demo",
        env=env,
    )
    assert _installed(uv_target, "zipped_demo") == "1.0"


def test_skypi_doctor_against_a_folder_index(server: Server, env: dict[str, str]) -> None:
    """`skypi serve` takes no presigned uploads and is public here: those two steps say so
    and are skipped, everything else passes."""
    result = run([str(BIN / "skypi"), "doctor", server.url, "--token", server.token], env)
    assert "this index takes no presigned uploads" in result.stdout
    assert "this index is public" in result.stdout
    assert "FAIL" not in result.stdout
    assert result.stdout.splitlines()[-1] == "verdict: healthy, 10 of 12 checks passed, 2 skipped"
