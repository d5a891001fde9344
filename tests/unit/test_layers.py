"""The layers contract (``.importlinter``) is real: ``lint-imports`` keeps it on this tree and
breaks it on a copy where a lower layer imports a higher one.

Each broken case copies ``functions/skypi``, ``infra``, ``bench`` and ``tests`` into a temporary
folder, adds one import, and runs the same ``lint-imports`` with the repository's own
configuration over the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over ``tree`` (which holds ``skypi/`` and ``infra/``), nothing cached."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(CONFIG)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tree: Path) -> Path:
    """The packages the contracts name, as Python sources only."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "edge", "assets")
    shutil.copytree(ROOT / "functions" / "skypi", tree / "skypi", ignore=ignore)
    for package in ("infra", "bench", "tests"):
        shutil.copytree(ROOT / package, tree / package, ignore=ignore)
    return tree


def test_this_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # A lower layer reaching up, directly and through a chain.
        ("skypi/core/errors.py", "import skypi.store.base", "skypi's layers"),
        ("skypi/store/base.py", "import skypi.indexer.service", "skypi's layers"),
        ("skypi/indexer/changes.py", "import skypi.api.settings", "skypi's layers"),
        ("skypi/api/settings.py", "import skypi.local.reasons", "skypi's layers"),
        ("skypi/local/reasons.py", "import skypi.cli", "skypi's layers"),
        # Siblings stay apart: the local server does not use the command line's HTTP client.
        ("skypi/local/wire.py", "import skypi.client.oidc", "skypi's layers"),
        # The core does no I/O: no AWS client under it.
        ("skypi/core/render.py", "import botocore.session", "The core is pure"),
        # The client speaks HTTP to an index, wherever that index runs.
        ("skypi/client/publish.py", "import skypi.store.s3", "over HTTP"),
        # The indexer Lambda stays free of the web app, even through a module of its own.
        ("skypi/indexer/events.py", "import fastapi", "no web app in the indexer"),
        ("skypi/core/negotiate.py", "import starlette.responses", "no web app in the indexer"),
        ("skypi/api/app.py", "import uvicorn", "none of the local server's"),
        # The CDK app: plain values only.
        ("infra/indexer.py", "import skypi.core.pages", "only skypi.core.constants"),
        ("skypi/core/constants.py", "import skypi.core.pages", "imports nothing of skypi"),
        ("skypi/core/keys.py", "import skypi.core.filenames", "imports nothing of skypi"),
        ("skypi/core/keys.py", "import packaging.utils", "imports nothing of skypi"),
        # Test helpers stay in the tests.
        ("bench/corpus.py", "import tests.dists", "Test helpers stay in the tests"),
        ("skypi/local/importer.py", "import tests.conftest", "Test helpers stay in the tests"),
        # The token adapter builds its own client, not the S3 adapter's.
        ("skypi/store/dynamo_tokens.py", "import skypi.store.s3", "beside the S3 adapter"),
    ],
)
def test_an_import_against_the_layers_breaks_the_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")

    result = _lint(tree)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = [row for row in result.stdout.splitlines() if " BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout
    imported = line.split()[1].split(".")[0]
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
    assert imported in result.stdout


def test_the_functions_use_the_values_infra_deploys_with() -> None:
    """The S3 notification filters and the edge's upload ceiling come from
    ``skypi.core.constants``; the code that stores and indexes uses the same values."""
    from skypi.core import constants, filenames, http, keys, pages

    assert filenames.DISTRIBUTION_SUFFIXES is constants.DISTRIBUTION_SUFFIXES
    assert http.MAX_LAMBDA_REQUEST_BYTES is constants.MAX_LAMBDA_REQUEST_BYTES
    assert pages.PACKAGES_PREFIX is keys.PACKAGES_PREFIX


def test_no_two_modules_define_a_class_of_the_same_name() -> None:
    """A name says what a thing is, once: ``Publisher`` is the trusted publisher only."""
    import ast

    where: dict[str, set[str]] = {}
    package = ROOT / "functions"
    for path in sorted((package / "skypi").rglob("*.py")):
        module = ".".join(path.relative_to(package).with_suffix("").parts)
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where.setdefault(node.name, set()).add(module)
    collisions = {name: modules for name, modules in where.items() if len(modules) > 1}
    assert collisions == {}
