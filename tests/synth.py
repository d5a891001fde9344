"""One synthesis of the stack per test run, with the pinned CDK CLI, offline (no bundling: no PyPI
needed); the `synth` fixture is registered for every test directory by tests/conftest.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bench.synth import ACCOUNT, BIN, CDK, REGION, ROOT, STACK, SynthFailed, cdk_env, synthesize

import infra  # noqa: F401 - points jsii at Node 24 before any test imports aws_cdk

__all__ = ["ACCOUNT", "BIN", "CDK", "REGION", "ROOT", "STACK", "Synth", "cdk_env", "run_synth"]


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


def run_synth(out: Path, context: dict[str, str], region: str) -> Synth:
    """``cdk synth`` with the pinned CLI, offline, into ``out``; ``region`` is the one the
    context (or its absence) leads to."""
    try:
        output = synthesize(out, context)
    except SynthFailed as exc:
        pytest.fail(str(exc))
    template = json.loads((out / f"{STACK}.template.json").read_text())
    companion = json.loads((out / f"{STACK}-global-{region}.template.json").read_text())
    return Synth(out, template, output, companion, region)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {"skypi:account": ACCOUNT, "skypi:region": REGION}
    return run_synth(tmp_path_factory.mktemp("cdk.out"), context, REGION)
