"""The emulator's server under load: what it does per request stays proportional to the
request (``skypi dev``, the AWS tests and the benchmarks' bursts all go through it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import moto
import pytest

from tests.emulated import s3_store


def test_a_request_lists_no_folder_of_moto(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's server looked for each request's service by listing its own package folder (a
    ``stat`` of each of its ~150 service folders), under a lock every request takes: the
    queue a burst of drop-ins waited in. The folder is listed once, when the server starts."""
    store = s3_store(moto_endpoint)
    store.put("simple/first/index.json", b"{}")  # what moto loads once per service, loaded
    package = Path(moto.__file__).parent
    listed: list[str] = []
    original = os.listdir

    def listdir(path: Any = ".") -> list[str]:
        if Path(path) == package:
            listed.append(str(path))
        return original(path)

    monkeypatch.setattr(os, "listdir", listdir)
    for i in range(5):
        store.put(f"simple/p{i}/index.json", b"{}")
        assert store.get(f"simple/p{i}/index.json")[1] == b"{}"
    assert listed == []
