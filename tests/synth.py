"""One synthesis of the stack per test run, with the pinned CDK CLI, offline (no bundling: no PyPI
needed); the `synth` fixture is registered for every test directory by tests/conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import infra  # noqa: F401 - points jsii at Node 24 before any test imports aws_cdk

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"


# Cross-region references (the companion stack in us-east-1) synthesize offline only for an
# explicit region; the shared synthesis names an account and a region other than us-east-1.
ACCOUNT = "123456789012"
REGION = "eu-west-1"
STACK = "Skypi"


@dataclass(frozen=True)
class Synth:
    out: Path
    template: dict[str, Any]
    output: str
    companion: dict[str, Any]
    region: str

    @property
    def template_path(self) -> Path:
        return self.out / f"{STACK}.template.json"

    @property
    def companion_path(self) -> Path:
        return self.out / f"{STACK}-global-{self.region}.template.json"

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template["Resources"].items() if r["Type"] == kind}

    def companion_resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.companion["Resources"].items() if r["Type"] == kind}


def cdk_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        CDK_DISABLE_CLI_TELEMETRY="true",
        CDK_DISABLE_VERSION_CHECK="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def run_synth(out: Path, context: dict[str, str], region: str) -> Synth:
    """``cdk synth`` with the pinned CLI, offline, into ``out``; ``region`` is the one the
    context (or its absence) leads to."""
    if not CDK.exists():
        pytest.fail("the pinned CDK CLI is missing: run `make setup` (npm ci)")
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
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((out / f"{STACK}.template.json").read_text())
    companion = json.loads((out / f"{STACK}-global-{region}.template.json").read_text())
    return Synth(out, template, result.stdout + result.stderr, companion, region)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {"skypi:account": ACCOUNT, "skypi:region": REGION}
    return run_synth(tmp_path_factory.mktemp("cdk.out"), context, REGION)
