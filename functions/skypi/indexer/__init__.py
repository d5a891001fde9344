"""Apply "file landed" / "file gone" to the pages, with compare-and-swap."""

from __future__ import annotations

from typing import Any

__all__ = ["Change", "Gone", "Indexer", "Landed", "Outcome"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the Lambda handler imports this package without the indexer.
    if name in __all__:
        from skypi.indexer import service

        return getattr(service, name)
    raise AttributeError(name)
