"""The command blocks of the README and docs that a user runs on one machine, run as written.

A block marked ``<!-- run: NAME -->`` just above its fence is run by bash, line by line as a
person would paste it, in a fresh home set up the way the block assumes (NAME says which
world: see ``WORLDS``). The blocks of one NAME in one document are one session, run in order in
the same home, as a reader follows a page. Only the port differs from the text (8080 may be
taken on a test machine).

- A command must exit 0, or the status its comment names (``# exits 1: ...``), and none may
  print a traceback.
- A ``skypi serve`` line starts the server in the background (a person runs it in another
  terminal), waits until it answers, and stops it when the session ends; the ``session`` world
  starts one itself, for blocks that assume one runs.
- A fence marked ``<!-- output -->`` after a run block is what that block prints, exactly (the
  home folder written ``/home/me``).

A ``sh`` block that a user runs locally is either marked or listed in ``NOT_RUN`` with why.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import httpx
import pytest

from skypi.core.tokens import TokenRecord, new_token
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
from tests.dists import make_wheel, sdist_bytes, sdist_name, wheel_bytes, wheel_name
from tests.e2e.conftest import BIN, client_env, free_port, run_cli, start_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"<!-- (?P<kind>run|output)(?:: (?P<world>[a-z-]+))?[^>]*-->\n```(?:sh)?\n(?P<body>.*?)```",
    re.DOTALL,
)
SH_BLOCK = re.compile(r"(?P<mark><!-- run: [^>]*-->\n)?```sh\n(?P<body>.*?)```", re.DOTALL)
SHOWN_HOME = "/home/me"
EXITS = re.compile(r"#.*\bexits (\d+)")

# Blocks a user runs locally that are not run here, by the start of their first line: why.
NOT_RUN = {
    "make serve": "serves until stopped, and `make test` runs every test tier",
    "make dev": "serves until stopped (tests/e2e/test_dev.py runs skypi dev)",
    "uv tool install /path/to/skypi-checkout": "a placeholder path; tests/e2e/test_tool_install.py"
    " installs the checkout as a tool",
    "skypi publisher add github octo/billing": "its flags are tested in tests/e2e/test_cli.py",
    "curl http://127.0.0.1:8080/simple/namespaces": "reads a server on a fixed port; both "
    "endpoints are read from a running skypi serve in tests/e2e/test_namespaces.py",
    "skypi view add safe --upstream https://pypi.org/simple/ --cooldown-days 7 --dir": "names "
    "pypi.org; the same command is run in docs/views.md, and tests/e2e/test_views.py adds views "
    "over a loopback upstream",
    "pip install --index-url http://127.0.0.1:8080/view/safe/simple/": "installs from pypi.org "
    "(no test reaches the internet): tests/e2e/test_views.py runs pip and uv through a view over "
    "a loopback upstream",
    "pip install --index-url http://127.0.0.1:8080/view/safe@2026-11-01/simple/": "installs "
    "from pypi.org: tests/e2e/test_views.py runs pip and uv through a pinned view over a "
    "loopback upstream",
    "skypi view osv all.zip": "reads osv.dev's export and asks pypi.org (no test reaches the "
    "internet): tests/e2e/test_views.py imports OSV data, explains and refreshes against a "
    "loopback upstream",
}


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    world: str
    body: str
    output: str | None = None

    def __str__(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Session:
    doc: Path
    world: str
    blocks: tuple[Block, ...]

    def __str__(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.world}"


def _blocks(doc: Path) -> list[Block]:
    found: list[Block] = []
    text = doc.read_text()
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 2
        if match["kind"] == "output":
            assert found, f"{doc.name}:{line}: an output fence follows no run block"
            found[-1] = dataclasses.replace(found[-1], output=match["body"])
        else:
            found.append(Block(doc, line, match["world"], match["body"]))
    return found


def _sessions() -> list[Session]:
    sessions: dict[tuple[Path, str], list[Block]] = {}
    for doc in DOCS:
        for block in _blocks(doc):
            sessions.setdefault((doc, block.world), []).append(block)
    return [Session(doc, world, tuple(blocks)) for (doc, world), blocks in sessions.items()]


def test_the_readme_has_its_session_marked() -> None:
    assert any(s.doc.name == "README.md" and s.world == "session" for s in _sessions())
    assert any(s.doc.name == "migrating.md" and s.world == "migrate" for s in _sessions())


def test_every_block_a_user_runs_locally_is_run() -> None:
    """An ``sh`` block with a local command (the folder index, 127.0.0.1) is marked, or is in
    ``NOT_RUN``; blocks for AWS, CI or a host name (placeholders in ``<>``) are not run."""
    unmarked, excused = [], set()
    for doc in DOCS:
        for match in SH_BLOCK.finditer(doc.read_text()):
            body = match["body"]
            commands = "\n".join(x.split("#", 1)[0] for x in body.splitlines())
            local = "./packages" in body or "127.0.0.1" in body or "~/" in body
            remote = re.search(r"--table|--bucket|<\w+>|example\.com|sudo ", commands)
            if match["mark"] or not local or remote:
                continue
            why = [start for start in NOT_RUN if body.startswith(start)]
            excused.update(why)
            if not why:
                unmarked.append(f"{doc.name}: {body.splitlines()[0]}")
    assert unmarked == []
    assert excused == set(NOT_RUN)  # no excuse outlives its block


def messy_pypiserver(old: Path) -> None:
    """A pypiserver folder as years of use leave it: a valid wheel and sdist, the same wheel
    again in a subfolder, a mislabelled wheel (its metadata says 2.0.1) sorted before the valid
    one of its name, an archive cut short, and an htpasswd file with a bcrypt user and two
    that pypiserver's README taught ({SHA}) or Apache's htpasswd made by default (apr1)."""
    for sub in ("archive", "team-a", "utils"):
        (old / sub).mkdir(parents=True)
    wheel = wheel_bytes("billing-core", "1.0")
    (old / wheel_name("billing-core", "1.0")).write_bytes(wheel)
    (old / "team-a" / wheel_name("billing-core", "1.0")).write_bytes(wheel)
    (old / sdist_name("billing-core", "1.0")).write_bytes(sdist_bytes("billing-core", "1.0"))
    (old / "archive" / wheel_name("utils", "2.0")).write_bytes(wheel_bytes("utils", "2.0.1"))
    (old / "utils" / wheel_name("utils", "2.0")).write_bytes(wheel_bytes("utils", "2.0"))
    cut = sdist_bytes("reports", "0.3")
    (old / sdist_name("reports", "0.3")).write_bytes(cut[: len(cut) // 2])
    alice = bcrypt.hashpw(b"alices password", bcrypt.gensalt(rounds=4)).decode()
    bob = "{SHA}" + base64.b64encode(hashlib.sha1(b"bobs password").digest()).decode()
    carol = "$apr1$Kx8dQ2kq$3jV0qWb9dm7B1Z8xLqQ0x/"
    (old / "htpasswd").write_text(f"alice:{alice}\nbob:{bob}\ncarol:{carol}\n")


@dataclass
class World:
    """A fresh home for a session: ``work`` is the folder commands run in."""

    home: Path
    work: Path
    env: dict[str, str] = field(default_factory=dict)
    server_port: int | None = None  # a server the world started (the session world)


def _session_world(world: World, stack: ExitStack, tmp: Path) -> None:
    """A project with a built wheel in ``dist/``, an older index's folder, an index folder with
    upload and admin tokens in $TOKEN and $ADMIN_TOKEN, and a server on it."""
    packages = world.work / "packages"
    for folder in (packages, world.work / "dist", world.home / "old-pypiserver"):
        folder.mkdir(parents=True)
    make_wheel(world.work / "dist", "mypkg", "1.2.0")
    make_wheel(world.home / "old-pypiserver", "oldpkg", "0.9")  # what an older index held
    token = run_cli("token", "create", str(packages), "--scope", "upload").stdout
    admin = run_cli("token", "create", str(packages), "--scope", "admin").stdout
    world.env.update(TOKEN=token.strip(), ADMIN_TOKEN=admin.strip())
    server = start_server(packages, tmp / "server.log")
    stack.callback(_stopped_cleanly, server.stop, server.log)
    world.server_port = server.port


def _tokens_world(world: World, stack: ExitStack, tmp: Path) -> None:
    """An index folder holding one token, whose id the docs show (3f2a9c1b), and pypiserver's
    password file as its README makes it (htpasswd.txt), with a bcrypt user."""
    record = TokenRecord.create(new_token(), name="laptop", scopes={"upload"}, projects=None)
    repo = TokenRepository(LocalStore(world.work / "packages"))
    repo.add(dataclasses.replace(record, id="3f2a9c1b" + record.id[8:]))
    alice = bcrypt.hashpw(b"alices password", bcrypt.gensalt(rounds=4)).decode()
    (world.work / "htpasswd.txt").write_text(f"alice:{alice}\n")


def _migrate_world(world: World, stack: ExitStack, tmp: Path) -> None:
    """A messy pypiserver folder in ~/old-pypiserver; no index yet."""
    messy_pypiserver(world.home / "old-pypiserver")


WORLDS: dict[str, Callable[[World, ExitStack, Path], None]] = {
    "session": _session_world,
    "tokens": _tokens_world,
    "migrate": _migrate_world,
}


def _stopped_cleanly(stop: Callable[[], object], log: Path) -> None:
    """Stop a server the session started; what it logged must hold no error or traceback."""
    stop()
    text = log.read_text()
    assert "ERROR" not in text, text
    assert "Traceback" not in text, text


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by a ``skypi serve`` line, and anything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


@contextmanager
def _world(name: str, tmp: Path) -> Iterator[World]:
    home = tmp / "home"
    world = World(home, home / "work")
    world.work.mkdir(parents=True)
    venv = tmp / "venv"  # pip and uv pip install into a fresh environment
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = client_env(tmp)
    env.pop("UV_PYTHON")  # uv pip installs into $VIRTUAL_ENV, the fresh one
    env.update(
        HOME=str(home),
        PATH=f"{venv / 'bin'}:{BIN}:/usr/bin:/bin",
        VIRTUAL_ENV=str(venv),
        PYTHONUNBUFFERED="1",  # output in the order a terminal shows it
    )
    world.env = env
    with ExitStack() as stack:
        WORLDS[name](world, stack, tmp)
        yield world


def _serve(command: str, world: World, port: int, stack: ExitStack, log: Path) -> None:
    """A ``skypi serve`` line, started as a person starts it in another terminal: in the
    background, until it answers; stopped (and its log checked) when the session ends."""
    if not re.search(r"(^| )(-p|--port) ", command):
        command += f" --port {port}"
    with log.open("ab") as out:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=world.work,
            env=world.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.callback(_stopped_cleanly, functools.partial(_stop, process), log)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)


def _run_block(block: Block, world: World, port: int, stack: ExitStack, tmp: Path) -> str:
    """Run each command of ``block``; what they printed, together."""
    script = block.body.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    printed = ""
    for number, line in enumerate(script.splitlines(), start=block.line):
        command = line.split("  #", 1)[0].strip()
        if not command or command.startswith("#"):
            continue
        if command.startswith("skypi serve "):
            _serve(command, world, port, stack, tmp / f"serve-{number}.log")
            continue
        done = subprocess.run(
            ["bash", "-c", script_prefix(script, line) + command],
            cwd=world.work,
            env=world.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        said = done.stdout
        expected = EXITS.search(line)
        status = int(expected.group(1)) if expected else 0
        where = f"{block.doc.name}:{number}: {command}"
        assert done.returncode == status, f"{where}\nexit {done.returncode}\n{said}"
        assert "Traceback" not in said, f"{where}\n{said}"
        printed += said
    return printed.replace(str(world.home), SHOWN_HOME).replace(f":{port}", ":8080")


@pytest.mark.parametrize("session", _sessions(), ids=str)
def test_a_documented_session_runs_as_written(session: Session, tmp_path: Path) -> None:
    assert session.world in WORLDS, f"{session}: no set-up for '{session.world}'"
    with _world(session.world, tmp_path) as world, ExitStack() as stack:
        port = world.server_port or free_port()
        for block in session.blocks:
            printed = _run_block(block, world, port, stack, tmp_path)
            if block.output is not None:
                shown = [x.rstrip() for x in block.output.strip().splitlines()]
                assert [x.rstrip() for x in printed.strip().splitlines()] == shown, str(block)


def script_prefix(script: str, line: str) -> str:
    """The ``export`` lines above ``line``: a person's shell keeps them for what follows."""
    before = script.split(line, 1)[0]
    exports = [x.split("  #", 1)[0] for x in before.splitlines() if x.startswith("export ")]
    return "".join(f"{x}\n" for x in exports)
