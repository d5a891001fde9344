"""The stack synthesized with the pinned CDK CLI, offline (no bundling: no PyPI needed): the one
way the tests (``tests/synth.py``) and the benchmarks read the template they hold the code to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
# Cross-region references (the companion stack in us-east-1) synthesize offline only for an
# explicit region; the shared synthesis names an account and a region other than us-east-1.
ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "Skypi"
CONTEXT = {"skypi:account": ACCOUNT, "skypi:region": REGION}


class SynthFailed(RuntimeError):
    """``cdk synth`` could not run or failed (its output is the message)."""


def cdk_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        CDK_DISABLE_CLI_TELEMETRY="true",
        CDK_DISABLE_VERSION_CHECK="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def synthesize(out: Path, context: dict[str, str] | None = None) -> str:
    """``cdk synth`` with the pinned CLI, offline, into ``out``; its output."""
    if not CDK.exists():
        raise SynthFailed("the pinned CDK CLI is missing: run `make setup` (npm ci)")
    context = CONTEXT if context is None else context
    args = [arg for key, value in context.items() for arg in ("-c", f"{key}={value}")]
    args += ["-c", "skypi:bundle=false", "-o", str(out)]
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", *args],
        cwd=ROOT,
        env=cdk_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise SynthFailed(result.stdout + result.stderr)
    return result.stdout + result.stderr


def template(out: Path) -> dict[str, Any]:
    """The main stack's template, as ``synthesize`` left it in ``out``."""
    loaded: dict[str, Any] = json.loads((out / f"{STACK}.template.json").read_text())
    return loaded


def only_resource(
    template: Mapping[str, Any], kind: str, where: Callable[[str, dict[str, Any]], bool]
) -> tuple[str, dict[str, Any]]:
    """The one resource of type ``kind`` that ``where(logical_id, resource)`` picks (its
    logical ID and itself); raises ValueError unless there is exactly one."""
    (found,) = [
        (k, r) for k, r in template["Resources"].items() if r["Type"] == kind and where(k, r)
    ]
    return found
