"""What each fault run did, for the terminal summary (``conftest.py``)."""

from __future__ import annotations

RUNS: list[str] = []
