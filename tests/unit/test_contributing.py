"""CONTRIBUTING's "where the rules live" and "to add a source of files" name modules, classes
and functions that exist: a move that leaves the page behind fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "functions" / "skypi"


def _sections() -> str:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    return text[text.index("### Where the rules live") : text.index("### The key layout")]


def test_every_path_named_exists() -> None:
    named = set(re.findall(r"`([\w./-]+\.(?:py|js|json))`", _sections()))
    assert len(named) > 20
    missing = [p for p in sorted(named) if not (ROOT / p).exists() and not (PACKAGE / p).exists()]
    assert missing == []


def test_every_name_given_exists_in_a_module_named() -> None:
    """Each `Name`, `Class.member` or `snake_name` stands in one of the modules named there."""
    sections = _sections()
    modules = [
        importlib.import_module("skypi." + m.replace("/", "."))
        for m in sorted(set(re.findall(r"\b((?:core|indexer|api|store|local)/\w+)\.py", sections)))
    ]
    names = set(re.findall(r"`([A-Z]\w*(?:\.\w+)?|\w+\.\w+|[a-z]\w*_\w*)(?:\(\))?`", sections))
    names = {n for n in names if not re.search(r"\.(py|js|json|toml|md|gz)$", n)}
    assert len(names) > 10

    def exists(name: str) -> bool:
        head, _, member = name.partition(".")
        owners = [getattr(m, head) for m in modules if hasattr(m, head)]
        return any(not member or hasattr(owner, member) for owner in owners)

    assert sorted(n for n in names if not exists(n)) == []
