"""The benchmarks' rounds and noise: merged rounds keep each round's figure, the noise table
judges a run against the previous one by the range of its rounds, and pip's requests are
counted the same through any index's path."""

from __future__ import annotations

import math

import pytest
from bench.goals import _noise_row, ranged, spread, write_figures
from bench.load import count_requests
from bench.writes import merged, merged_row


def test_merged_row_is_the_median_with_every_round_kept() -> None:
    rows = [
        {"ready_s": 3.0, "cpu_s": 1.0, "upload_ms": [10.0]},
        {"ready_s": 1.0, "cpu_s": math.nan, "upload_ms": [20.0]},
        {"ready_s": 2.0, "cpu_s": 3.0, "upload_ms": [30.0]},
    ]
    row = merged_row(rows)
    assert row["ready_s"] == 2.0
    assert row["cpu_s"] == 2.0  # a round without the figure is left out of its median
    assert row["upload_ms"] == [10.0, 20.0, 30.0]
    assert row["by_round"]["ready_s"] == [3.0, 1.0, 2.0]
    assert row["rounds"] == 3


def test_merged_row_of_a_stopped_start_in_every_round_stays_stopped() -> None:
    row = merged_row([{"timed_out": 120.0}, {"timed_out": 120.0}])
    assert "ready_s" not in row
    assert row["timed_out"] == 120.0


def test_merged_parts_take_each_peer_and_size_and_the_floor() -> None:
    parts = [
        {
            "sizes": [100],
            "floor": {"skypi": {"ready_s": 1.0}},
            "peers": {"skypi": {"100": {"ready_s": 4.0}}, "pypiserver": {}},
        },
        {
            "sizes": [100],
            "floor": {"skypi": {"ready_s": 3.0}},
            "peers": {"skypi": {"100": {"ready_s": 2.0}}, "pypiserver": {}},
        },
    ]
    whole = merged(parts)
    assert whole["peers"]["skypi"]["100"]["by_round"]["ready_s"] == [4.0, 2.0]
    assert whole["peers"]["skypi"]["100"]["ready_s"] == 3.0
    assert whole["floor"]["skypi"]["ready_s"] == 2.0


def test_ranged_and_spread() -> None:
    assert ranged([2.0, 1.0, 4.0]) == "2.00 (1.00–4.00)"
    assert ranged([2.0]) == "2.00"
    assert spread([1.0, 2.0, 4.0]) == "150 %"
    assert spread([2.0]) == "—"


@pytest.mark.parametrize(
    ("previous_ratio", "better", "verdict"),
    [
        (0.5, "higher", "within noise"),
        (0.3, "higher", "better"),  # this run's ratios are all above the previous one
        (0.9, "higher", "**worse**"),
        (0.3, "lower", "**worse**"),  # for a time, a higher ratio is worse
        (0.9, "lower", "better"),
    ],
)
def test_noise_verdict_is_the_previous_ratio_against_this_runs_range(
    previous_ratio: float, better: str, verdict: str
) -> None:
    figure = {"better": better, "skypi": [4.0, 5.0, 6.0], "pypiserver": [10.0] * 3}
    figure["ratio"] = [0.4, 0.5, 0.6]
    before = {"skypi": [5.0], "pypiserver": [5.0 / previous_ratio], "ratio": [previous_ratio]}
    assert _noise_row("rate", figure, before).endswith(f"| {verdict} |")


def test_write_figures_pair_the_peers_round_by_round() -> None:
    results = {
        "sizes": {
            "200": {
                "peers": {
                    "skypi": [{"upload_fps": 40.0, "drop_in_s": 0.1}, {"upload_fps": 60.0}],
                    "pypiserver": [{"upload_fps": 10.0, "drop_in_s": 0.5}, {"upload_fps": 20.0}],
                }
            }
        }
    }
    figures = write_figures(results)
    assert figures["twine uploads/s, 200 projects"]["ratio"] == [4.0, 3.0]
    assert figures["drop-in to visible s, 200 projects"]["ratio"] == [0.2]


def test_pip_requests_are_counted_through_a_view_and_a_mirror() -> None:
    log = "\n".join(
        f'"GET {path} HTTP/1.1" 200'
        for path in (
            "/view/pub/simple/pub-00001/",
            "/root/pub/+simple/pub-00001/",
            "/simple/pub-00001/",
            "/view/pub/files/pub_00001-1.0.0-py3-none-any.whl.metadata",
            "/root/pub/+f/abc/pub_00001-1.0.0-py3-none-any.whl",
        )
    )
    assert count_requests(log) == {"pages": 3, ".metadata": 1, "files": 1}
