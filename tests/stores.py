"""Stores for the write path's tests: the same test on a folder and on a bucket (moto), and a
store that lets the test act just before each write (to crash it, or to run another writer)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skypi.store.base import Body, ObjectInfo, Store
from skypi.store.local import LocalStore
from tests.emulated import s3_store


def folder_or_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fixture's store as its param names it: "local" (a folder) or "s3" (moto)."""
    if request.param == "local":
        return LocalStore(tmp_path / "packages")
    return s3_store(request.getfixturevalue("moto_endpoint"))


class Interposed:
    """A store whose ``head``, ``put`` and ``delete`` call :meth:`before` first (with the
    method's name and arguments); everything else goes straight to the store inside."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def before(self, method: str, *args: Any, **kwargs: Any) -> None:
        """What the test does at that point: nothing here."""

    def head(self, key: str) -> ObjectInfo | None:
        self.before("head", key)
        return self.inner.head(key)

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        self.before("put", key, **kwargs)
        return self.inner.put(key, body, **kwargs)

    def delete(self, key: str, **kwargs: Any) -> None:
        self.before("delete", key, **kwargs)
        self.inner.delete(key, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
