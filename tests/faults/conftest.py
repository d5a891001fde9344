"""The fault tier's counts, printed at the end of the run (so CI's output shows them)."""

from __future__ import annotations

import pytest

from tests.faults.report import RUNS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RUNS:
        return
    terminalreporter.section("fault injection")
    for run in RUNS:
        terminalreporter.write_line(run)
