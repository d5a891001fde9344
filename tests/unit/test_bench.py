"""The benchmarks' own arithmetic, and that bench/ stands on its own (imports nothing of tests/)."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from bench.report import versus
from bench.writes import exponents, growth_exponent

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize(
    ("seconds_of", "exponent"),
    [
        (lambda n: 0.002 * n, 1.0),  # linear
        (lambda n: 3e-7 * n**2, 2.0),  # quadratic
        (lambda n: 5.0, 0.0),  # flat
        (lambda n: 0.01 * n**1.7, 1.7),  # the N^1.7 of rewriting a growing root per project
    ],
)
def test_growth_exponent_is_the_log_log_slope(seconds_of: object, exponent: float) -> None:
    sizes = [1000, 4000, 16000]
    seconds = [seconds_of(n) for n in sizes]  # type: ignore[operator]
    assert growth_exponent(sizes, seconds) == pytest.approx(exponent, abs=1e-9)


def test_growth_exponent_fits_noisy_points_by_least_squares() -> None:
    # log2 sizes 0, 1, 2 and log2 times 0, 2, 2: the least-squares slope is 1.0 (not 2 or 0).
    assert growth_exponent([1, 2, 4], [1.0, 4.0, 4.0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("sizes", "seconds"),
    [
        ([1000], [1.0]),  # one point has no slope
        ([1000, 1000], [1.0, 2.0]),  # nor two at the same size
        ([1000, 4000], [1.0, -0.5]),  # a time at or below the floor is no point
        ([1000, 4000], [1.0, math.nan]),
        ([], []),
    ],
)
def test_growth_exponent_without_two_usable_sizes_is_nan(
    sizes: list[int], seconds: list[float]
) -> None:
    assert math.isnan(growth_exponent(sizes, seconds))


def test_growth_exponent_skips_unusable_points() -> None:
    assert growth_exponent([1000, 2000, 4000], [1.0, 0.0, 4.0]) == pytest.approx(1.0)


def test_exponents_are_fitted_above_the_empty_folder_start() -> None:
    adoption = {
        "floor": {
            "skypi": {"ready_s": 1.0, "cpu_s": 0.5},
            "pypiserver": {"ready_s": 0.2, "cpu_s": 0.1},
        },
        "peers": {
            "skypi": {
                "1000": {"ready_s": 3.0, "cpu_s": 2.5},  # 2 s above the floor
                "4000": {"ready_s": 9.0, "cpu_s": 8.5},  # 8 s: linear
                "16000": {"timed_out": 60.0},  # stopped: it took 59 s above the floor at least
            },
            "pypiserver": {  # within a few hundredths of its floor: nothing to fit
                "1000": {"ready_s": 0.21, "cpu_s": 0.1},
                "4000": {"ready_s": 0.25, "cpu_s": 0.12},
            },
        },
    }
    fits = exponents(adoption)
    assert fits["skypi"]["wall"] == pytest.approx(1.0)
    assert fits["skypi"]["cpu"] == pytest.approx(1.0)
    assert fits["skypi"]["wall_at_least"] == pytest.approx(
        growth_exponent([1000, 4000, 16000], [2.0, 8.0, 59.0])
    )
    assert fits["skypi"]["wall_at_least"] > 1.2
    assert math.isnan(fits["pypiserver"]["wall"])
    assert "wall_at_least" not in fits["pypiserver"]


@pytest.mark.parametrize(
    ("skypi", "pypiserver", "kwargs", "said"),
    [
        (5.4, 1.0, {}, "5.4x slower"),
        (1.0, 3.0, {}, "3.0x faster"),
        (30.0, 60.0, {"rate": True}, "2.0x slower"),
        (0.33, 313.75, {"what": "CPU"}, "951x less CPU"),
        (1.0, math.nan, {}, "—"),
        (0.0, 1.0, {}, "—"),
    ],
)
def test_skypi_against_pypiserver_in_words(
    skypi: float, pypiserver: float, kwargs: dict[str, object], said: str
) -> None:
    assert versus(skypi, pypiserver, **kwargs) == said  # type: ignore[arg-type]


def test_bench_imports_nothing_from_tests() -> None:
    offenders = []
    for path in sorted(BENCH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert offenders == []
