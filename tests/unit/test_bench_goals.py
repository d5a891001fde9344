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


def test_scale_goals_list_each_goal_with_its_peers_exponent_and_why() -> None:
    from bench.goals import scale_goals

    def restart(files: int, sk: float, ps: float) -> dict[str, object]:
        return {
            "files": files,
            "peers": {
                "skypi": [{"restart_s": sk, "restart_cpu_s": sk / 2}],
                "pypiserver": [{"restart_s": ps, "restart_cpu_s": ps / 2}],
            },
        }

    results = {
        "restart": restart(12000, 4.0, 1.0) | {"smaller": [restart(1200, 0.4, 0.5)]},
        "sizes": {
            "200": {"reindex_s": 0.5, "reindex_cpu_s": 0.4, "peers": {}},
            "2000": {"reindex_s": 5.0, "reindex_cpu_s": 4.0, "peers": {}},
        },
    }
    lines = scale_goals(results)
    restart_row = next(line for line in lines if line.startswith("| start-up"))
    assert "4.00 s, 2.00 CPU-s" in restart_row
    assert "| 1.00; 0.30 (CPU-s over files) | **missed** |" in restart_row
    assert "4.0x pypiserver's" in restart_row  # why: its CPU against pypiserver's, measured
    reindex_row = next(line for line in lines if line.startswith("| full `skypi reindex`"))
    assert "| 1.00 (CPU: 1.00) | met |  |" in reindex_row  # 5 s at 12,000 files: met, no why
