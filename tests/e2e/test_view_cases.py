"""Every case of a view's policy (tests/viewcases.py) on the folder path: a private
``skypi serve`` of a folder with the table's views, real pip, uv and poetry through them, and
``skypi view explain --dir`` for why."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skypi.core.keys import view_file_key
from skypi.store.local import LocalStore
from tests.dists import make_wheel
from tests.e2e.conftest import BIN, Server, run_cli, start_server, wait_for
from tests.e2e.test_conventions import poetry_bin as poetry_bin
from tests.upstream import StaticUpstream
from tests.viewcases import CASES, Case, Reads, check_root_listing, run_case, served, upstreams

pytestmark = pytest.mark.e2e


@dataclass
class Folder(Reads):
    """The folder path's :class:`~tests.viewcases.World`."""

    upstream: StaticUpstream
    flaky: StaticUpstream
    tmp: Path
    credentials: tuple[str, str]
    poetry: Path
    folder: Path
    server: Server | None = None

    def base(self) -> str:
        assert self.server is not None
        return self.server.url

    def publish(self, name: str, version: str) -> None:
        wheel = make_wheel(self.folder, name, version)  # a drop-in: the server's watch sees it
        if self.server is not None:
            assert wait_for(lambda: wheel.name in self.get(f"/simple/{name}/").text, 20)

    def cli(self, *args: str) -> str:
        import subprocess

        done = subprocess.run(
            [str(BIN / "skypi"), *args], capture_output=True, text=True, timeout=60
        )
        return done.stdout + done.stderr

    def location(self) -> list[str]:
        return ["--dir", str(self.folder)]

    def reserve(self, namespace: str) -> None:
        run_cli("namespace", "add", namespace, str(self.folder), "--owner", "platform")

    def cached(self, view: str, project: str, filename: str) -> bool:
        return LocalStore(self.folder).head(view_file_key(view, project, filename)) is not None

    def start(self) -> None:
        self.server = start_server(self.folder, self.tmp / "server.log", "--private")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, poetry_bin: Path) -> Iterator[Folder]:
    """One served folder for the whole table (each case touches only its own projects)."""
    tmp = tmp_path_factory.mktemp("view-cases")
    packages = tmp / "packages"
    packages.mkdir()
    token = run_cli("token", "create", str(packages), "--scope", "read").stdout.strip()
    with upstreams() as (upstream, flaky):
        world = Folder(upstream, flaky, tmp, ("__token__", token), poetry_bin, packages)
        with served(world):
            yield world


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_through_a_folder(folder: Folder, case: Case) -> None:
    run_case(folder, case)


def test_the_view_root_lists_private_and_served_names_on_a_folder(folder: Folder) -> None:
    check_root_listing(folder)
