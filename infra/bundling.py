"""Lambda packaging without Docker: the locked runtime dependencies, installed as manylinux
wheels for the functions' platform, plus the ``skypi`` package.

- Versions come from ``uv.lock`` (the ``lambda`` dependency group), so the bundle runs what
  the tests ran.
- ``--only-binary :all:`` with ``--python-platform`` picks wheels built for Lambda's
  architecture and Python, whatever the host is.
- The X-Ray SDK (what ``aws-lambda-powertools[tracer]`` adds) is bundled only for a stack
  that traces calls (``skypi:traceCalls``): nothing else imports it.
- Bytecode is compiled by an interpreter of the functions' own Python version, when this
  machine has one (``python3.14`` on PATH, or a Python uv manages): ``/var/task`` is
  read-only, so without ``.pyc`` files every cold start compiles every module it imports.
  The ``.pyc`` files are unchecked-hash ones (PEP 552): valid whatever the files' times
  after unzipping, never re-validated against the source. Without such an interpreter the
  bundle ships sources only and says so; host bytecode for another version is never shipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

from infra import ROOT

PACKAGE = ROOT / "functions" / "skypi"
# What the ``tracer`` extra of aws-lambda-powertools brings (uv.lock), needed only to trace calls.
TRACING_ONLY = frozenset({"aws-xray-sdk", "wrapt"})
_VERSION_OF = "import sys; print('%d.%d' % sys.version_info[:2])"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise RuntimeError("uv is needed to bundle the Lambda functions: run `make setup`")
    return found


def interpreter_for(python_version: str) -> str | None:
    """An interpreter of exactly ``python_version`` (``3.14``) on this machine, or None."""
    candidates = [sys.executable, shutil.which(f"python{python_version}")]
    with contextlib.suppress(RuntimeError, OSError):
        found = subprocess.run(
            [_uv(), "python", "find", "--no-project", python_version],
            capture_output=True,
            text=True,
            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
            timeout=60,
        )
        candidates.append(found.stdout.strip() if found.returncode == 0 else None)
    for candidate in filter(None, candidates):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            version = subprocess.run(
                [candidate, "-I", "-c", _VERSION_OF], capture_output=True, text=True, timeout=60
            ).stdout.strip()
            if version == python_version:
                return candidate
    return None


def compile_bytecode(output_dir: Path, python_version: str) -> bool:
    """Compile every module in the bundle for ``python_version``; False when no interpreter
    of that version is here (the bundle then ships sources only)."""
    interpreter = interpreter_for(python_version)
    if interpreter is None:
        print(
            f"skypi bundle: no Python {python_version} interpreter on this machine, so the "
            "bundle ships no bytecode and each cold start compiles its imports "
            f"(install python{python_version}, or `uv python install {python_version}`)",
            file=sys.stderr,
        )
        return False
    subprocess.run(
        [
            interpreter,
            "-I",
            "-m",
            "compileall",
            "-q",
            "-j0",
            "--invalidation-mode",
            "unchecked-hash",
            str(output_dir),
        ],
        check=False,  # a stray file that is not valid Python (a template, a test) stays source
    )
    return True


def platform_tag(architecture: str) -> str:
    return {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}[architecture]


def build_bundle(
    output_dir: Path, architecture: str, python_version: str, *, tracing: bool = False
) -> None:
    """Fill ``output_dir`` with everything the handlers import."""
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        subprocess.run(
            [
                _uv(),
                "export",
                "--frozen",
                "--only-group",
                "lambda",
                "--no-hashes",
                "--no-emit-project",
                "--no-header",
                "--quiet",
                "-o",
                str(requirements),
            ],
            cwd=ROOT,
            check=True,
        )
        if not tracing:
            pinned = requirements.read_text().splitlines()
            kept = [r for r in pinned if r.split("==")[0].strip().lower() not in TRACING_ONLY]
            requirements.write_text("\n".join(kept) + "\n")
        subprocess.run(
            [
                _uv(),
                "pip",
                "install",
                "--quiet",
                "--target",
                str(output_dir),
                "--python-platform",
                platform_tag(architecture),
                "--python-version",
                python_version,
                "--only-binary",
                ":all:",
                "--no-compile",
                "-r",
                str(requirements),
            ],
            cwd=ROOT,
            check=True,
        )
    shutil.rmtree(output_dir / "bin", ignore_errors=True)  # console scripts: no use on Lambda
    shutil.copytree(PACKAGE, output_dir / "skypi", ignore=_IGNORE, dirs_exist_ok=True)
    compile_bytecode(output_dir, python_version)


def source_hash(architecture: str, python_version: str, tracing: bool = False) -> str:
    """Changes when the code, the lock or the target does (the asset's identity)."""
    compiled = "bytecode" if interpreter_for(python_version) else "sources"
    traced = "traced" if tracing else "untraced"
    digest = hashlib.sha256(f"{architecture}/{python_version}/{compiled}/{traced}".encode())
    for path in sorted([ROOT / "uv.lock", *package_files()]):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def package_files() -> list[Path]:
    """The files of the package that the bundle ships: its modules and its data (the pages'
    style and script), as :func:`build_bundle` copies them."""
    return [
        path
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and not any(
            part == "__pycache__" or part.startswith(".")
            for part in path.relative_to(PACKAGE).parts
        )
        and path.suffix != ".pyc"
    ]


@jsii.implements(ILocalBundling)
class LocalBundling:
    """CDK's local bundler: used instead of Docker, which these machines do not have."""

    def __init__(self, architecture: str, python_version: str, tracing: bool = False) -> None:
        self.architecture = architecture
        self.python_version = python_version
        self.tracing = tracing

    def try_bundle(self, output_dir: str, *, image: Any, **_: Any) -> bool:
        build_bundle(Path(output_dir), self.architecture, self.python_version, tracing=self.tracing)
        return True
