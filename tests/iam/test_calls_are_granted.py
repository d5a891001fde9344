"""Every AWS call each function makes on moto is allowed by its role in the synthesized
template, evaluated with IAM's rules (tests/iam/policy.py)."""

from __future__ import annotations

import pytest

from tests.iam.conftest import Ledger, Stack
from tests.iam.scenarios import SCENARIOS


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_call_is_granted(scenario: str, stack: Stack, ledger: Ledger) -> None:
    SCENARIOS[scenario](stack)
    calls = stack.recorder.calls
    function = scenario.split(":")[0]
    assert {c.function for c in calls} == {function}, "the scenario acts as its function"
    ledger.runs[scenario] = stack
    assert stack.denied(calls) == []
