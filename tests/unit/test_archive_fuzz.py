"""A mutation fuzz of the archive reader: whatever a hand-made wheel or sdist holds, reading it
ends in one of two ways, "read" (its core metadata) or "refused" (InvalidDistribution, with a
reason of its own, not the catch-all's), and it ends.

The mutants (``tests/mutants.py``) are rebuilt from a fixed seed: ``MUTANTS`` per format, for
the wheel, the zip sdist, the tar.gz sdist and the tar.bz2 sdist (8,000 in all, about 10 s of
CPU on one core). What the fuzz found is kept in ``tests/assets/archive-corpus/`` (one folder
per fault, the file under its distribution filename) and read again by a plain test; every one
of them raised out of the reader, or never returned, before the reader refused it.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest

from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import parse_filename
from skypi.core.metadata import CoreMetadata, read_file_metadata
from tests.mutants import FORMATS, NAME, mutant

SEED = 21
MUTANTS = 2000  # per format
CATCH_ALL = "The archive cannot be read:"  # read_metadata's refusal of what no parser expected
CORPUS = Path(__file__).parent.parent / "assets" / "archive-corpus"


def _read(filename: str, data: bytes) -> CoreMetadata | InvalidDistribution:
    try:
        return read_file_metadata(parse_filename(filename), io.BytesIO(data), len(data))
    except InvalidDistribution as exc:
        return exc


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_every_mutant_is_read_or_refused_with_a_reason(format_name: str) -> None:
    fmt = FORMATS[format_name]
    outcomes: Counter[str] = Counter()
    unexplained: list[str] = []
    for number in range(MUTANTS):
        how, data = mutant(format_name, number, SEED)
        try:
            result = _read(fmt.filename, data)
        except Exception as exc:  # the fuzz's finding: name the mutant that rebuilds it
            unexplained.append(f"mutant {number} ({how}) raised {type(exc).__name__}: {exc}")
            continue
        if isinstance(result, CoreMetadata):
            assert result.project == NAME  # a read mutant still agrees with its filename
            outcomes["read"] += 1
        elif CATCH_ALL in str(result):
            unexplained.append(f"mutant {number} ({how}) fell through to the catch-all: {result}")
        else:
            outcomes["refused"] += 1
    print(f"{format_name}: {MUTANTS} mutants, seed {SEED}: {dict(outcomes)}")
    assert not unexplained, "\n".join(unexplained[:20])
    assert outcomes["read"] > 0  # the mutants reach both ends
    assert outcomes["refused"] > 0
    assert sum(outcomes.values()) == MUTANTS


CASES = sorted(p.name for p in CORPUS.iterdir())


def test_the_corpus_holds_one_file_per_fault() -> None:
    assert len(CASES) >= 14
    assert all(len(list((CORPUS / case).iterdir())) == 1 for case in CASES)


@pytest.mark.timeout(60)  # two of these once never returned (a tar size of 2**88 bytes)
@pytest.mark.parametrize("case", CASES)
def test_what_the_fuzz_found_is_refused_with_a_reason(case: str) -> None:
    (path,) = (CORPUS / case).iterdir()
    result = _read(path.name, path.read_bytes())
    assert isinstance(result, InvalidDistribution)
    assert str(result).startswith("Invalid distribution file. ")
    assert CATCH_ALL not in str(result)
