"""Lambda packaging without Docker: the locked runtime dependencies, installed as manylinux
wheels for the functions' platform, plus the ``skypi`` package.

- Versions come from ``uv.lock`` (the ``lambda`` dependency group), so the bundle runs what
  the tests ran.
- ``--only-binary :all:`` with ``--python-platform`` picks wheels built for Lambda's
  architecture and Python, whatever the host is.
- No bytecode is written: host-compiled ``.pyc`` files would be for the wrong Python.
"""

from __future__ import annotations

import hashlib
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
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise RuntimeError("uv is needed to bundle the Lambda functions: run `make setup`")
    return found


def platform_tag(architecture: str) -> str:
    return {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}[architecture]


def build_bundle(output_dir: Path, architecture: str, python_version: str) -> None:
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


def source_hash(architecture: str, python_version: str) -> str:
    """Changes when the code, the lock or the target does (the asset's identity)."""
    digest = hashlib.sha256(f"{architecture}/{python_version}".encode())
    for path in sorted([ROOT / "uv.lock", *PACKAGE.rglob("*.py")]):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class LocalBundling:
    """CDK's local bundler: used instead of Docker, which these machines do not have."""

    def __init__(self, architecture: str, python_version: str) -> None:
        self.architecture = architecture
        self.python_version = python_version

    def try_bundle(self, output_dir: str, *, image: Any, **_: Any) -> bool:
        build_bundle(Path(output_dir), self.architecture, self.python_version)
        return True
