"""Blocking vulnerabilities by severity: how an OSV record's own fields rate it (CVSS 2, 3 and
4 vectors, GitHub's ``database_specific.severity``), how a view's policy states the level, and
the rule for a record without a usable rating (fail closed by default)."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from skypi.core.errors import InvalidRequest
from skypi.core.osv import Advisory, OsvData
from skypi.core.severity import Severity, cvss_score, rate
from skypi.core.viewpolicy import Reason, UpstreamFile, UpstreamPage, evaluate
from skypi.core.views import _KNOWN, parse_policy, policy_from_json_bytes

CRITICAL_V3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N"  # 9.1
HIGH_V4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"  # 8.7
HIGH_V2 = "AV:N/AC:L/Au:N/C:P/I:P/A:P"  # 7.5
MEDIUM_V3 = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _record(rid: str, versions: list[str], **fields: Any) -> dict[str, Any]:
    affected = {"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": versions}
    affected |= fields.pop("affected", {})
    return {"id": rid, "summary": f"{rid} in demo", "affected": [affected], **fields}


def _page(*versions: str) -> UpstreamPage:
    old = NOW - timedelta(days=30)
    return UpstreamPage(
        "demo",  # type: ignore[arg-type]
        tuple(
            UpstreamFile(
                f"demo-{v}.tar.gz", f"https://up.example/f/demo-{v}.tar.gz", "ab" * 32, 3, old
            )
            for v in versions
        ),
    )


@pytest.mark.parametrize(
    ("kind", "vector", "score"),
    [("CVSS_V3", CRITICAL_V3, 9.1), ("CVSS_V4", HIGH_V4, 8.7), ("CVSS_V2", HIGH_V2, 7.5)],
)
def test_cvss_vectors_of_each_version_are_scored(kind: str, vector: str, score: float) -> None:
    assert cvss_score(kind, vector) == score


@pytest.mark.parametrize(
    ("kind", "vector"),
    [
        ("CVSS_V3", "CVSS:3.1/AV:N"),  # metrics missing
        ("CVSS_V3", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N"),  # a value that is none
        ("CVSS_V3", "CVSS:3.1/" + "AV:N/" * 500),  # too long to be one
        ("CVSS_V4", CRITICAL_V3),  # a vector of another version
        ("CVSS_V2", "<script>alert(1)</script>"),
        ("Ubuntu", "high"),  # a type that is not CVSS
        ("CVSS_V3", 9.8),  # a number, not a vector
        (None, None),
    ],
)
def test_a_vector_that_does_not_parse_gives_no_score(kind: Any, vector: Any) -> None:
    assert cvss_score(kind, vector) is None


def test_the_highest_rating_of_a_record_counts() -> None:
    entries = [{"type": "CVSS_V3", "score": MEDIUM_V3}, {"type": "CVSS_V4", "score": HIGH_V4}]
    assert rate(entries, {"severity": "LOW"}) == Severity("high", HIGH_V4, 8.7)
    assert rate([{"type": "CVSS_V3", "score": MEDIUM_V3}], {"severity": "CRITICAL"}) == Severity(
        "critical", "database_specific: CRITICAL"
    )
    assert rate([], {"severity": "MODERATE"}) == Severity("medium", "database_specific: MODERATE")
    for nothing in ([], "x", [{"type": "CVSS_V3"}], [7]):
        assert rate(nothing, {"severity": "SEVERE"}) is None
        assert rate(nothing, "HIGH") is None


def test_a_packages_own_severity_wins_over_the_records_and_survives_storing() -> None:
    record = _record(
        "GHSA-1",
        ["1.0"],
        severity=[{"type": "CVSS_V3", "score": MEDIUM_V3}],
        database_specific={"severity": "MODERATE"},
        affected={"severity": [{"type": "CVSS_V3", "score": CRITICAL_V3}]},
    )
    advisory = Advisory.all_from_record(record)[0]
    assert advisory.severity == Severity("critical", CRITICAL_V3, 9.1)
    stored = OsvData.from_json_bytes(OsvData.from_advisories([advisory]).to_json_bytes())
    assert stored.matching("demo", "1.0")[0].severity == advisory.severity
    # a document stored before ratings were read: no rating (unrated), not an error
    old = b'{"advisories":[{"id":"GHSA-1","project":"demo","summary":"","versions":["1.0"],'
    old += b'"spans":[]}]}'
    assert OsvData.from_json_bytes(old).matching("demo", "1.0")[0].severity is None
    hostile = old.replace(b'"spans":[]', b'"spans":[],"severity":["severe","x",99]')
    assert OsvData.from_json_bytes(hostile).matching("demo", "1.0")[0].severity is None
    for score in (b"true", b"99", b'"9"'):
        edited = old.replace(b'"spans":[]', b'"spans":[],"severity":["high","x",' + score + b"]")
        assert OsvData.from_json_bytes(edited).matching("demo", "1.0")[0].severity == Severity(
            "high", "x"
        )


def _osv() -> OsvData:
    return OsvData.from_records(
        [
            _record("GHSA-crit", ["1.0"], severity=[{"type": "CVSS_V3", "score": CRITICAL_V3}]),
            _record("GHSA-mod", ["2.0"], database_specific={"severity": "MODERATE"}),
            _record("PYSEC-none", ["3.0"]),  # no rating at all
            _record("MAL-2026-1", ["5.0"]),  # malicious: blocked whatever the policy
        ]
    )


def test_a_view_blocks_advisories_at_or_above_its_level_and_unrated_ones_by_default() -> None:
    base = {"upstream": "https://up.example/simple/"}
    page = _page("1.0", "2.0", "3.0", "4.0", "5.0")
    cases = {
        "no block-severity": ({}, {"1.0", "2.0", "3.0", "4.0"}),
        "high": ({"block-severity": "high"}, {"2.0", "4.0"}),
        "high, unrated listed": (
            {"block-severity": "HIGH", "block-unrated": False},
            {"2.0", "3.0", "4.0"},
        ),
        "moderate": ({"block-severity": "moderate", "block-unrated": False}, {"3.0", "4.0"}),
        "critical": ({"block-severity": "critical"}, {"2.0", "4.0"}),
    }
    for case, (extra, listed) in cases.items():
        outcome = evaluate(parse_policy("safe", base | extra), "demo", page, NOW, _osv())
        assert {v.version for v in outcome.verdicts if v.listed} == listed, case
        assert {v.version: v.reason for v in outcome.verdicts}["5.0"] is Reason.MALWARE
    high = evaluate(parse_policy("safe", base | cases["high"][0]), "demo", page, NOW, _osv())
    why = {v.version: (v.reason, v.detail) for v in high.verdicts}
    assert why["1.0"] == (
        Reason.SEVERITY,
        f"GHSA-crit (critical, {CRITICAL_V3} = 9.1; rated critical, at or above high): "
        "GHSA-crit in demo",
    )
    assert why["3.0"] == (
        Reason.SEVERITY,
        "PYSEC-none (unrated; no usable severity, and block-unrated is on): PYSEC-none in demo",
    )
    pin = datetime(2026, 11, 30, tzinfo=UTC)  # the time-pinned form: the same rule
    pinned = evaluate(parse_policy("safe", base | cases["high"][0]), "demo", page, NOW, _osv(),
                      pin=pin)  # fmt: skip
    assert {v.version for v in pinned.verdicts if v.listed} == {"2.0", "4.0"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"block-severity": "severe"}, "block-severity must be one of low, medium, high, critical"),
        ({"block-severity": 7}, "block-severity must be one of"),
        ({"block-severity": "high", "block-unrated": "yes"}, "block-unrated must be true"),
        ({"block-unrated": False}, "block-unrated applies only with block-severity"),
    ],
)
def test_a_wrong_severity_setting_is_refused_with_what_it_should_be(
    doc: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_policy("safe", {"upstream": "https://up.example/simple/", **doc})


def test_severity_settings_are_stored_and_read_back() -> None:
    doc = {"upstream": "https://up.example/simple/", "block-severity": "Moderate"}
    policy = parse_policy("safe", doc | {"block-unrated": False})
    assert (policy.block_severity, policy.block_unrated) == ("medium", False)
    assert policy_from_json_bytes("safe", policy.to_json_bytes()) == policy
    plain = parse_policy("safe", {"upstream": doc["upstream"]})
    assert "block-severity" not in plain.to_json()  # pages made before stay current
    assert policy_from_json_bytes("safe", plain.to_json_bytes()) == plain


def test_the_policy_docs_views_md_shows_is_valid_and_its_table_names_every_setting() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "views.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    policy = parse_policy("safe", tomllib.loads(example.group(1)))
    assert (policy.block_severity, policy.block_unrated) == ("high", True)
    table = doc.split("### Every setting", 1)[1].split("###", 1)[0]
    for setting in _KNOWN:
        assert f"`{setting}`" in table or f"`[[{setting}]]`" in table, setting
