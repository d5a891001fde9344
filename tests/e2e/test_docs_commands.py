"""The command blocks of the README and docs that a user runs on one machine, run as written.

A block marked ``<!-- run: NAME -->`` just above its fence is run by bash, line by line as a
person would paste it, in a fresh folder set up the way the block assumes (NAME says which),
against a real ``skypi serve``. Only the port differs from the text (8080 may be taken on a
test machine). Every command must exit 0 and none may print a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.dists import make_wheel
from tests.e2e.conftest import BIN, client_env, run_cli, start_server

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKED = re.compile(r"<!-- run: (?P<world>[a-z-]+)[^>]*-->\n```sh\n(?P<body>.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    world: str
    body: str

    def __str__(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def _blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for match in MARKED.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            found.append(Block(doc, line, match["world"], match["body"]))
    return found


def test_the_readme_has_its_session_marked() -> None:
    assert any(b.doc.name == "README.md" and b.world == "session" for b in _blocks())


@pytest.mark.parametrize("block", _blocks(), ids=str)
def test_a_documented_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    assert block.world == "session", f"{block}: no set-up for '{block.world}'"
    home = tmp_path / "home"
    work = home / "work"
    for folder in (work / "packages", work / "dist", home / "old-pypiserver"):
        folder.mkdir(parents=True)
    make_wheel(work / "dist", "mypkg", "1.2.0")
    make_wheel(home / "old-pypiserver", "oldpkg", "0.9")  # what an older index held
    token = run_cli("token", "create", str(work / "packages"), "--scope", "upload").stdout
    admin = run_cli("token", "create", str(work / "packages"), "--scope", "admin").stdout
    server = start_server(work / "packages", tmp_path / "server.log")
    env = client_env(tmp_path)
    venv = tmp_path / "venv"  # pip and uv pip install into a fresh environment
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env.update(
        HOME=str(home),
        PATH=f"{venv / 'bin'}:{BIN}:/usr/bin:/bin",
        VIRTUAL_ENV=str(venv),
        TOKEN=token.strip(),
        ADMIN_TOKEN=admin.strip(),
    )
    script = block.body.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")
    try:
        for number, line in enumerate(script.splitlines(), start=block.line):
            command = line.split("  #", 1)[0].strip()
            if not command or command.startswith("#"):
                continue
            done = subprocess.run(
                ["bash", "-c", script_prefix(script, line) + command],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            said = done.stdout + done.stderr
            assert done.returncode == 0, f"{block.doc.name}:{number}: {command}\n{said}"
            assert "Traceback" not in said, f"{block.doc.name}:{number}: {command}\n{said}"
    finally:
        server.stop()
    assert "ERROR" not in server.log.read_text()


def script_prefix(script: str, line: str) -> str:
    """The ``export`` lines above ``line``: a person's shell keeps them for what follows."""
    before = script.split(line, 1)[0]
    exports = [x.split("  #", 1)[0] for x in before.splitlines() if x.startswith("export ")]
    return "".join(f"{x}\n" for x in exports)
