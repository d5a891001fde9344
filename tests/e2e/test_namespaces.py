"""Namespaces (PEP 752) with the real clients against ``skypi serve``: ``skypi namespace`` on
the folder and through the admin API; twine, uv publish and ``skypi publish`` show the 409's
reason; pip, uv and poetry resolve against api-version 1.5 pages that carry the key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

from skypi.core.tokens import hash_token
from tests.dists import make_wheel
from tests.e2e.conftest import Server, pip, run, run_cli, twine, uv
from tests.e2e.test_conventions import poetry_bin as poetry_bin

pytestmark = pytest.mark.e2e
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
SKYPI = str(Path(sys.executable).with_name("skypi"))


def _token(server: Server, *args: str) -> tuple[str, str]:
    """A new token and its principal (``token:ID``, the id ``skypi token list`` shows)."""
    token = run_cli("token", "create", str(server.folder), *args).stdout.strip()
    listed = json.loads(run_cli("token", "list", str(server.folder), "--json").stdout)
    record = next(r for r in listed if r["id"] == hash_token(token)[:12])
    return token, f"token:{record['id']}"


def _page(server: Server, project: str) -> dict[str, object]:
    page: dict[str, object] = httpx.get(f"{server.index}{project}/", headers=JSON).json()
    return page


def test_namespaces_from_the_cli_and_every_clients_refusal(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    platform, platform_id = _token(server, "--scope", "upload", "--name", "platform")
    data, data_id = _token(server, "--scope", "upload", "--name", "data")
    api = ["--url", server.url, "--token", server.token]
    added = run([SKYPI, "namespace", "add", "acme", "--owner", "platform", *api], env)
    assert "Added namespace acme  owner platform; no grants" in added.stdout
    run([SKYPI, "namespace", "grant", "acme", platform_id, *api], env)
    folder = [str(server.folder)]  # the same namespaces, read from the folder itself
    run([SKYPI, "namespace", "add", "acme-cloud", *folder, "--owner", "platform"], env)
    listed = json.loads(run([SKYPI, "namespace", "list", "--json", *api], env).stdout)
    assert [(n["name"], n["grants"]) for n in listed] == [
        ("acme", [platform_id]),
        ("acme-cloud", []),
    ]
    assert httpx.get(f"{server.url}/simple/namespaces").json() == [
        {"name": "acme"},
        {"name": "acme-cloud"},
    ]

    wheel = make_wheel(tmp_path, "acme-tools", "1.0")
    refused = twine(
        "upload", "--non-interactive", "--repository-url", f"{server.url}/legacy/",
        "-u", "__token__", "-p", data, str(wheel), env=env, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    shown = " ".join((refused.stdout + refused.stderr).split())  # rich wraps the lines
    assert "409 Conflict" in shown
    assert "namespace 'acme', reserved for platform" in shown  # the reason phrase
    assert f"skypi namespace grant acme {data_id}" in shown
    refused = uv(
        "publish", "--publish-url", f"{server.url}/legacy/", "--token", data, str(wheel),
        env=env, check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert f"skypi namespace grant acme {data_id}" in refused.stderr
    refused = run([SKYPI, "publish", "--url", server.url, "--token", data, str(wheel)], env, False)
    assert refused.returncode == 1
    assert "namespace 'acme', reserved for platform" in refused.stderr
    assert not list(server.folder.rglob("acme_tools*"))  # nothing left behind

    run([SKYPI, "publish", "--url", server.url, "--token", platform, str(wheel)], env)
    page = _page(server, "acme-tools")
    assert page["meta"] == {"api-version": "1.5", "_last-serial": page["meta"]["_last-serial"]}  # type: ignore[index]
    assert page["namespaces"] == [{"name": "acme", "owned": True, "_owner": "platform"}]

    run([SKYPI, "namespace", "grant", "acme", platform_id, "--revoke", *api], env)
    run([SKYPI, "namespace", "remove", "acme-cloud", *api], env)
    assert httpx.get(f"{server.url}/simple/namespace/acme-cloud").status_code == 404
    gone = run([SKYPI, "namespace", "remove", "acme-cloud", *api], env, check=False)
    assert gone.returncode == 1
    assert "404" in gone.stderr
    assert "No namespace 'acme-cloud'" in gone.stderr


def test_pip_uv_and_poetry_resolve_against_pages_with_namespaces(
    server: Server, env: dict[str, str], tmp_path: Path, poetry_bin: Path
) -> None:
    """No client reads the key (PEP 752 is too new): each must take the 1.5 page as it is."""
    dist = tmp_path / "dist"
    dist.mkdir()
    make_wheel(dist, "acme-lib", "1.0")
    make_wheel(dist, "acme-app", "1.0", requires=("acme-lib",))
    run(
        [SKYPI, "publish", "--url", server.url, "--token", server.token, *map(str, dist.iterdir())],
        env,
    )
    run_cli("namespace", "add", "acme", str(server.folder), "--owner", "platform")
    for project in ("acme-lib", "acme-app"):  # predating the namespace: not owned
        assert _page(server, project)["namespaces"] == [
            {"name": "acme", "owned": False, "_owner": "platform"}
        ]
    pip("install", "--no-cache-dir", "--index-url", server.index, "--target",
        str(tmp_path / "pip"), "acme-app", env=env)  # fmt: skip
    assert (tmp_path / "pip" / "acme_lib").is_dir()
    uv("pip", "install", "--index-url", server.index, "--target", str(tmp_path / "uv"),
       "acme-app", env=env)  # fmt: skip
    assert (tmp_path / "uv" / "acme_lib").is_dir()
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        'dependencies = ["acme-app"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "skypi"\nurl = "{server.index}"\npriority = "primary"\n'
    )
    poetry_env = {
        **env,
        "PATH": f"{poetry_bin}:{env['PATH']}",
        "POETRY_CONFIG_DIR": str(tmp_path / "poetry-config"),
        "POETRY_CACHE_DIR": str(tmp_path / "poetry-cache"),
        "POETRY_DATA_DIR": str(tmp_path / "poetry-data"),
        "POETRY_KEYRING_ENABLED": "false",
    }
    locked = run([str(poetry_bin / "poetry"), "lock", "-C", str(project)], poetry_env)
    assert "Warning" not in locked.stderr + locked.stdout
    lock = (project / "poetry.lock").read_text()
    assert 'name = "acme-lib"' in lock
    assert 'name = "acme-app"' in lock
