"""The version and the uv pin are each written once; what reads them gets the same value."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import skypi

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once_in_the_package() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert "version" not in project  # read by the build from skypi/__init__.py
    assert project["dynamic"] == ["version"]
    assert importlib.metadata.version("skypi") == skypi.__version__


def test_the_uv_pin_is_written_once_and_the_bootstrap_reads_it() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    pins = re.findall(r'"uv==([0-9.]+)"', text)
    assert len(pins) == 1, pins  # the dev group's, locked in uv.lock
    (pin,) = pins
    locked = re.search(
        r'\[\[package\]\]\nname = "uv"\nversion = "([^"]+)"', (ROOT / "uv.lock").read_text()
    )
    assert locked is not None
    assert locked.group(1) == pin
    for path in (
        "Makefile",
        ".ci/run",
        "README.md",
        *(str(p) for p in (ROOT / "docs").glob("*.md")),
    ):
        assert pin not in (ROOT / path).read_text(), f"{path} repeats the uv pin"
    # What `make setup` installs when uv is missing: the same version.
    dry = subprocess.run(
        ["make", "-n", "-B", ".tools/bin/uv"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert f"uv=={pin}" in dry.stdout
    installed = subprocess.run(
        [str(Path(sys.executable).with_name("uv")), "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.split()[1] == pin


def test_the_license_metadata_names_the_license_shipped() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["license"] == "Apache-2.0"  # an SPDX expression (PEP 639)
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert importlib.metadata.metadata("skypi")["License-Expression"] == "Apache-2.0"
