"""The deploy rehearsal (``make rehearse``, tests/rehearsal.py) runs end to end, bounded in
time: the synthesized template's edge function, behaviours and functions on moto, and
``skypi doctor`` passes against it with no S3 call outside the roles' grants."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.infra.conftest import ROOT
from tests.rehearsal import Ledger

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_doctor_passes_against_the_rehearsal_with_every_s3_call_granted() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.rehearsal", "--wait", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "verdict: healthy, 12 of 12 checks passed" in result.stdout, output[-4000:]
    checked = next(line for line in result.stdout.splitlines() if "S3 calls by the" in line)
    assert int(checked.split()[1]) > 0  # the ledger saw the handlers' calls
    assert "DENIED" not in result.stdout
    assert "a missing page for people is the API's 404 page: yes" in result.stdout
    assert "the landing page names the index's address: yes" in result.stdout
    assert "a view that does not exist is the view Lambda's 404: yes" in result.stdout


def test_the_ledger_denies_what_no_statement_grants() -> None:
    """The rehearsal's grant check can fail: a key outside the role's prefixes, an action the
    role lacks, a bucket-level call without a bucket grant."""
    ledger = Ledger({"Api": {"s3:GetObject": ["simple/*"], "s3:ListBucket": [""]}})
    ledger.calls += [
        ("Api", "s3:GetObject", "simple/a/index.json"),
        ("Api", "s3:ListBucket", ""),
        ("Api", "s3:GetObject", "site/index.html"),
        ("Api", "s3:PutObject", "simple/a/index.json"),
        ("Api", "s3:ListBucketVersions", ""),
    ]
    assert ledger.denials() == [
        "Api: s3:GetObject site/index.html",
        "Api: s3:ListBucketVersions",
        "Api: s3:PutObject simple/a/index.json",
    ]
