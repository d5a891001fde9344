"""Each grant is needed: strip one statement (or one resource of a statement) of a function's
role at a time and replay every recorded call of the scenarios; some call must be denied, or
tests/iam/exemptions.toml names why none is (the Lambda service, not the handler, makes it; or
no test path makes it yet). Run after tests/iam/test_calls_are_granted.py, which records."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.iam.conftest import Ledger, Stack
from tests.iam.policy import Decision, Statement, evaluate
from tests.iam.scenarios import SCENARIOS
from tests.iam.template import FUNCTIONS, Deployment, grants

EXEMPTIONS = Path(__file__).with_name("exemptions.toml")
# The template's names with placeholders for the test's: how a grant is named in the file.
PLACEHOLDERS = Deployment(
    bucket="<bucket>",
    queue="<queue>",
    dead_letters="<dead-letters>",
    sync_failures="<sync-failures>",
    token_table="<token-table>",
    token_stream_arn="<token-stream>",
    publisher_table="<publisher-table>",
    distribution_id="<distribution>",
    kvs_arn="<key-value-store>",
    invalidations="<invalidations>",
    invalidation_dead_letters="<invalidation-dead-letters>",
    schedule_group="<schedule-group>",
    scheduler_role="<scheduler-role>",
)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Strip:
    """One statement of a role removed, or one resource of it (statements and their resources
    come in the same order whatever names the deployment has)."""

    function: str
    index: int
    name: str
    resource: int | None = None  # the position of the resource removed; None: the statement

    def apply(self, statements: list[Statement]) -> list[Statement]:
        if self.resource is None:
            return [s for i, s in enumerate(statements) if i != self.index]
        document = dict(statements[self.index].document)
        document["Resource"] = [
            r for i, r in enumerate(_listed(document["Resource"])) if i != self.resource
        ]
        return [Statement(document) if i == self.index else s for i, s in enumerate(statements)]


def strips(template: dict[str, Any], function: str) -> list[Strip]:
    found = []
    for index, grant in enumerate(grants(template, function, PLACEHOLDERS)):
        actions = " ".join(sorted(str(a) for a in _listed(grant.statement.document["Action"])))
        resources = [str(r) for r in _listed(grant.statement.document["Resource"])]
        found.append(Strip(function, index, f"{function}: {actions} on {' '.join(resources)}"))
        if len(resources) > 1:
            found += [
                Strip(function, index, f"{function}: {actions} on {r} (one resource)", position)
                for position, r in enumerate(resources)
            ]
    return found


def _denies(strip: Strip, runs: dict[str, Stack]) -> list[str]:
    denied = []
    for scenario, stack in runs.items():
        statements = [g.statement for g in stack.grants(strip.function)]
        stripped = strip.apply(statements)
        for call in stack.recorder.calls:
            if call.function != strip.function:
                continue
            for request in call.requests:
                if evaluate(stripped, request) is not Decision.ALLOWED:
                    denied.append(f"{scenario}: {call} {request}")
    return denied


def _exemptions() -> dict[str, str]:
    document = tomllib.loads(EXEMPTIONS.read_text())
    return {e["grant"]: e["why"] for e in document["exempt"]}


def test_every_grant_is_needed_by_some_recorded_call(
    ledger: Ledger, stack: Stack, request: pytest.FixtureRequest
) -> None:
    missing = [s for s in SCENARIOS if s not in ledger.runs]
    if missing:  # run on its own: record the scenarios here, one stack for them all
        for scenario in missing:
            SCENARIOS[scenario](stack)
        ledger.runs.update(dict.fromkeys(missing, stack))
    exempt = _exemptions()
    needless, stale, denying, exempted = [], [], 0, []
    all_strips = [s for f in FUNCTIONS for s in strips(stack.synth.template, f)]
    for strip in all_strips:
        denied = _denies(strip, ledger.runs)
        if denied and strip.name in exempt:
            stale.append(
                f"{strip.name}: exempt, yet {len(denied)} call(s) need it, e.g. {denied[0]}"
            )
        elif denied:
            denying += 1
        elif strip.name in exempt:
            exempted.append(f"  exempt: {strip.name}: {exempt[strip.name]}")
        else:
            needless.append(strip.name)
    unknown = set(exempt) - {s.name for s in all_strips}
    ledger.summary[:] = [
        f"{len(all_strips)} stripped (statements and single resources of the indexer, API, "
        f"token sync and view roles), {denying} produced a denial, {len(exempted)} exempt:",
        *exempted,
    ]
    assert not needless, (
        "no recorded call needs these grants: remove them, or exempt them:\n" + "\n".join(needless)
    )
    assert not stale, "\n".join(stale)
    assert not unknown, f"exemptions naming no grant of the template: {sorted(unknown)}"
