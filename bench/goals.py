"""docs/benchmarks.md's sections for views beside devpi, the scale goals (every row beside its
peers, with growth exponents) and the write path's run-to-run noise."""

from __future__ import annotations

import math
import statistics
from typing import Any

from bench.report import _cell, _fmt, _get, _median, _values
from bench.writes import exponents, growth_exponent

NOT_DONE = "—"


def ranged(values: list[float], digits: int = 2) -> str:
    """The median and, over more than one round, its range."""
    if not values:
        return NOT_DONE
    said = _fmt(statistics.median(values), digits)
    if len(values) > 1:
        said += f" ({_fmt(min(values), digits)}–{_fmt(max(values), digits)})"
    return said


def spread(values: list[float]) -> str:
    """The range over the median, in percent: how far apart the rounds were."""
    if len(values) < 2 or not statistics.median(values):
        return NOT_DONE
    return f"{100 * (max(values) - min(values)) / statistics.median(values):.0f} %"


# -- views ------------------------------------------------------------------------------


def views_section(results: dict[str, Any]) -> list[str]:
    views = results.get("views")
    if not views:
        return []
    lines = [
        "## Views: a view over a local upstream beside a devpi mirror of it",
        "",
        f"The upstream is a second `skypi serve` of {views['projects']:,} public projects (two "
        "wheels each, 30 days old; `pub-00001` to "
        f"`pub-{views['chain']:05d}` a dependency chain). skypi serves a view of it with a "
        "7-day cooldown (the policy applied to every file); devpi-server "
        f"({views.get('devpi', 'from PyPI')}) a mirror index of it, `root/pub`. "
        "Each round starts both fresh, in a rotated order. First miss: the time to the first "
        "byte of a page never asked for (the server asks the upstream, applies its policy or "
        f"not, stores the page and answers), over {views.get('misses', 20)} projects. pip: "
        f"`pip install --dry-run pub-00001`, the {views['chain']}-package chain, the first "
        "time (every page a miss, every file fetched from upstream) and again (all cached), "
        "beside pip against the upstream directly. Page hits: every page asked for once, "
        "then at random under wrk (8 connections), with the server's CPU per page. Medians "
        "over the rounds, their range in brackets.",
        "",
        "| index | first miss, ms to first byte | pip, first time s (requests) | pip again s | "
        "hits req/s | CPU ms/page | p50 / p99 ms | start-up s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for label, rows in views["peers"].items():
        lines.append(_view_row(label, rows))
    up = views["upstream"]
    lines.append(
        f"| the upstream directly (`/simple/`) | {NOT_DONE} | {_pip_cell(up, 'pip')} | "
        f"{NOT_DONE} | {ranged(_values(up, 'html', 'rps'), 0)} | "
        f"{ranged(_values(up, 'html', 'cpu_ms'), 3)} | "
        f"{_fmt(_median(up, 'html', 'p50'), 2)} / {_fmt(_median(up, 'html', 'p99'), 1)} | "
        f"{NOT_DONE} |"
    )
    return [*lines, "", *_views_ratios(views), ""]


def _pip_cell(rows: list[dict[str, Any]], key: str) -> str:
    if not rows:
        return NOT_DONE
    asked = rows[-1][key]["requests"]
    said = ", ".join(f"{n} {kind}" for kind, n in sorted(asked.items()))
    ok = "" if all(r[key]["ok"] for r in rows) else " **failed**"
    return f"{ranged(_values(rows, key, 'seconds'))} ({said}){ok}"


def _view_row(label: str, rows: list[dict[str, Any]]) -> str:
    return (
        f"| {label} | {ranged(_values(rows, 'miss', 'ttfb_p50_ms'), 1)} | "
        f"{_pip_cell(rows, 'pip_first')} | {ranged(_values(rows, 'pip_again', 'seconds'))} | "
        f"{ranged(_values(rows, 'html', 'rps'), 0)} | {ranged(_values(rows, 'html', 'cpu_ms'), 3)}"
        f" | {_fmt(_median(rows, 'html', 'p50'), 2)} / {_fmt(_median(rows, 'html', 'p99'), 1)} | "
        f"{ranged(_values(rows, 'startup_s'))} |"
    )


def _views_ratios(views: dict[str, Any]) -> list[str]:
    view, devpi = views["peers"].get("skypi view", []), views["peers"].get("devpi", [])
    up = views["upstream"]

    def ratio(a: list[dict[str, Any]], b: list[dict[str, Any]], *path: str) -> str:
        return _fmt(_median(a, *path) / _median(b, *path), 2) + "x"

    return [
        f"- Page hits, CPU per page: view / devpi = {ratio(view, devpi, 'html', 'cpu_ms')}, "
        f"view / the upstream's own `/simple/` = {ratio(view, up, 'html', 'cpu_ms')}.",
        f"- First miss, time to first byte: view / devpi = "
        f"{ratio(view, devpi, 'miss', 'ttfb_p50_ms')}.",
        f"- pip through the view against the upstream directly: "
        f"{_fmt(_median(view, 'pip_again', 'seconds') / _median(up, 'pip', 'seconds'), 2)}x "
        "once cached, "
        f"{_fmt(_median(view, 'pip_first', 'seconds') / _median(up, 'pip', 'seconds'), 2)}x the "
        f"first time; through devpi "
        f"{_fmt(_median(devpi, 'pip_again', 'seconds') / _median(up, 'pip', 'seconds'), 2)}x "
        "once cached, "
        f"{_fmt(_median(devpi, 'pip_first', 'seconds') / _median(up, 'pip', 'seconds'), 2)}x "
        "the first time. devpi serves no `.metadata` files (PEP 658), so pip downloads "
        "every wheel through it.",
    ]


# -- the scale goals --------------------------------------------------------------------


def scale_goals(results: dict[str, Any]) -> list[str]:
    """Every scale goal: skypi, pypiserver and devpi where they have a counterpart, the
    growth exponent, met or missed, and why a miss remains."""
    rows: list[str] = []
    for build in (_restart, _upload, _reindex, _adopt_flat, _adopt_project, _burst, _s3, _cold):
        row = build(results)
        if row is None:
            continue
        goal, sk, ps, devpi, slope, met, why = row
        verdict = NOT_DONE if met is None else ("met" if met else "**missed**")
        why = why if met is False else ""
        rows.append(f"| {goal} | {sk} | {ps} | {devpi} | {slope} | {verdict} | {why} |")
    if not rows:
        return []
    return [
        "## Scale goals, beside the peers",
        "",
        "Each goal measured in this run beside pypiserver (and devpi where it has a "
        "counterpart), medians over the rounds with their range in brackets. The growth "
        "exponent is the least-squares slope of log(time) over log(size) across the sizes "
        "measured (0: flat; 1: linear); `—`: no counterpart, or not measured in this run.",
        "",
        "| goal | skypi | pypiserver | devpi | growth exponent (skypi; pypiserver) | | "
        "why, where missed |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


# goal, skypi, pypiserver, devpi, growth exponent, met, why (from this run's figures) if missed
Built = tuple[str, str, str, str, str, bool | None, str] | None


def _restart(results: dict[str, Any]) -> Built:
    restart = results.get("restart")
    if not restart:
        return None
    parts = [*restart.get("smaller", []), restart]

    def slope(peer: str) -> float:
        files = [part["files"] for part in parts]
        seconds = [_median(part["peers"].get(peer, []), "restart_cpu_s") for part in parts]
        return growth_exponent(files, seconds)

    def cell(peer: str) -> str:
        rows = restart["peers"].get(peer, [])
        return (
            f"{ranged(_values(rows, 'restart_s'))} s, "
            f"{ranged(_values(rows, 'restart_cpu_s'))} CPU-s"
        )

    sk, ps = restart["peers"].get("skypi", []), restart["peers"].get("pypiserver", [])
    seconds, cpu = _median(sk, "restart_s"), _median(sk, "restart_cpu_s")
    why = (
        f"the start spends {_fmt(cpu, 2)} CPU-s before its port answers, "
        f"{_fmt(cpu / _median(ps, 'restart_cpu_s'), 1)}x pypiserver's (which reads nothing "
        "until asked): one walk of the folder and its state, the folder's watches, the read "
        f"path's imports; its wall time is {_fmt(seconds / cpu, 1)}x that CPU time here, "
        "the rest waiting for a core of this shared machine"
    )
    return (
        f"start-up on a restored {restart['files']:,}-file folder <= 1 s",
        cell("skypi"),
        cell("pypiserver"),
        "(keeps no folder of files)",
        f"{_fmt(slope('skypi'), 2)}; {_fmt(slope('pypiserver'), 2)} (CPU-s over files)",
        None if math.isnan(seconds) else seconds <= 1,
        why,
    )


def _project_rows(results: dict[str, Any], peer: str) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = results.get("writes", {}).get("project", {}).get("peers", {})
    return rows.get(peer, {})


def _by_round(row: dict[str, Any] | None, key: str) -> list[float]:
    if not row:
        return []
    values = row.get("by_round", {}).get(key) or ([row[key]] if key in row else [])
    return [v for v in values if isinstance(v, int | float) and not math.isnan(v)]


def _upload(results: dict[str, Any]) -> Built:
    project = results.get("writes", {}).get("project")
    if not project:
        return None
    low = min(project["sizes"])

    def slope(peer: str) -> float:  # seconds per file against the project's size
        rows = _project_rows(results, peer)
        sizes = [n for n in project["sizes"] if _get(rows.get(str(n)), "upload_fps") > 0]
        return growth_exponent(sizes, [1 / _get(rows[str(n)], "upload_fps") for n in sizes])

    def cell(peer: str) -> str:
        values = _by_round(_project_rows(results, peer).get(str(low)), "upload_fps")
        return f"{ranged(values, 1)} files/s" if values else NOT_DONE

    sk = _project_rows(results, "skypi").get(str(low))
    ps = _project_rows(results, "pypiserver").get(str(low))
    rate = _get(sk, "upload_fps")
    cpu_ms = _get(sk, "upload_cpu_ms")
    why = (
        f"the server spends {_fmt(cpu_ms, 0)} ms of CPU per upload (pypiserver "
        f"{_fmt(_get(ps, 'upload_cpu_ms'), 0)} ms), writing the project's pages and their "
        f"followers: at 60 files/s that alone is {_fmt(60 * cpu_ms / 1000, 1)} cores, on a "
        "machine of two shared with twine and the other work"
    )
    return (
        f"twine upload rate, {low:,}-file project >= 60 files/s",
        cell("skypi"),
        cell("pypiserver"),
        cell("devpi"),
        f"{_fmt(slope('skypi'), 2)}; {_fmt(slope('pypiserver'), 2)} (seconds per file over "
        "the project's files)",
        None if math.isnan(rate) else rate >= 60,
        why,
    )


def _reindex(results: dict[str, Any]) -> Built:
    sizes = sorted(int(s) for s in results.get("sizes", {}))
    if not sizes:
        return None
    data = [results["sizes"][str(s)] for s in sizes]
    files = [6 * s for s in sizes]
    top = data[-1]
    return (
        f"full `skypi reindex`, {files[-1]:,} files <= 5 s",
        f"{_fmt(top['reindex_s'], 2)} s ({_fmt(top['reindex_cpu_s'], 2)} CPU-s)",
        "(no counterpart: reads the folder at each request)",
        "(no counterpart)",
        f"{_fmt(growth_exponent(files, [d['reindex_s'] for d in data]), 2)} (CPU: "
        f"{_fmt(growth_exponent(files, [d['reindex_cpu_s'] for d in data]), 2)})",
        top["reindex_s"] <= 5 if files[-1] >= 12000 else None,
        f"{_fmt(1000 * top['reindex_cpu_s'] / files[-1], 2)} ms of CPU per file "
        f"({_fmt(top['reindex_cpu_s'], 1)} CPU-s of the {_fmt(top['reindex_s'], 1)} s: the rest "
        "waiting for the disk and a core): each archive's metadata read, each project's "
        "pages and their followers written",
    )


def _adopt_flat(results: dict[str, Any]) -> Built:
    adoption = results.get("writes", {}).get("adoption")
    if not adoption:
        return None
    big = max(adoption["sizes"])
    fits = exponents(adoption)

    def cell(peer: str) -> str:
        row = adoption["peers"].get(peer, {}).get(str(big))
        values = _by_round(row, "ready_s")
        stopped = (row or {}).get("stopped")
        more = (
            f"; {stopped['rounds']} more round(s) stopped, not ready after "
            f"{stopped['after_s']:.0f} s"
            if stopped
            else ""
        )
        return ranged(values) + " s" + more if values else _cell(row)

    def fit(peer: str) -> str:
        one = fits.get(peer, {})
        bound = "at least " if "wall_at_least" in one else ""
        return bound + _fmt(one.get("wall_at_least", one.get("wall", math.nan)), 2)

    row = adoption["peers"].get("skypi", {}).get(str(big))
    seconds, cpu = _get(row, "ready_s"), _get(row, "cpu_s")
    why = (
        f"{_fmt(big / seconds, 0)} projects/s; {_fmt(cpu, 1)} CPU-s "
        f"({_fmt(1000 * cpu / big, 2)} ms per project: every project's pages and followers "
        f"written before the port opens), the wall time {_fmt(seconds / cpu, 1)}x the CPU "
        "time on this shared machine"
        if not math.isnan(seconds)
        else f"not ready within {_fmt(adoption['timeout_s'], 0)} s (stopped)"
    )
    return (
        f"first adoption of {big:,} single-file projects <= 20 s",
        cell("skypi"),
        cell("pypiserver"),
        "(keeps no folder of files)",
        f"{fit('skypi')}; {fit('pypiserver')}",
        (seconds <= 20 if not math.isnan(seconds) else False) if big >= 16000 else None,
        why,
    )


def _adopt_project(results: dict[str, Any]) -> Built:
    project = results.get("writes", {}).get("project")
    if not project:
        return None
    top = max(project["sizes"])

    def slope(peer: str) -> float:
        rows = _project_rows(results, peer)
        return growth_exponent(
            project["sizes"], [_get(rows.get(str(n)), "ready_s") for n in project["sizes"]]
        )

    def cell(peer: str) -> str:
        values = _by_round(_project_rows(results, peer).get(str(top)), "ready_s")
        return ranged(values) + " s" if values else NOT_DONE

    row = _project_rows(results, "skypi").get(str(top))
    seconds, cpu = _get(row, "ready_s"), _get(row, "cpu_s")
    floor = _get(results["writes"]["adoption"].get("floor", {}).get("skypi"), "ready_s")
    why = (
        f"{_fmt(cpu, 2)} CPU-s ({_fmt(1000 * cpu / top, 2)} ms per file: each archive read "
        f"for its metadata, the page written once); an empty folder's start takes "
        f"{_fmt(floor, 2)} s of it here"
    )
    return (
        f"first adoption of one {top:,}-file project <= 2 s",
        cell("skypi"),
        cell("pypiserver"),
        "(keeps no folder of files)",
        f"{_fmt(slope('skypi'), 2)}; {_fmt(slope('pypiserver'), 2)} (over the project's files)",
        (seconds <= 2 if not math.isnan(seconds) else False) if top >= 3000 else None,
        why,
    )


def _burst(results: dict[str, Any]) -> Built:
    aws = results.get("aws")
    if not aws or not aws.get("rows"):
        return None
    rows = aws["rows"]
    row = next((r for r in rows if r["concurrency"] == aws["modelled"]), rows[0])
    sizes = sorted(int(s) for s in results.get("sizes", {}))
    local = results["sizes"][str(sizes[-1])]["peers"] if sizes else {}

    def dropped(peer: str) -> str:
        values = _values(local.get(peer, []), "drop_in_s")
        return f"local path: drop-in visible in {ranged(values)} s" if values else NOT_DONE

    by_concurrency = sorted({r["concurrency"]: r["throughput"] for r in rows}.items())
    environments = [c for c, _ in by_concurrency]
    per_drop = [1 / t for _, t in by_concurrency]
    slope = (
        f"{_fmt(growth_exponent(environments, per_drop), 2)} (seconds per drop over environments)"
        if len(by_concurrency) > 1
        else NOT_DONE
    )
    listed = row["listed"] == row["drops"]
    return (
        f"burst of {row['drops']:,} drops on the emulated AWS path: p99 <= 5 s at the modelled "
        f"concurrency ({aws['modelled']}), every drop listed",
        f"p99 {_fmt(row['p99_s'], 2)} s (p50 {_fmt(row['p50_s'], 2)} s), {row['listed']:,} of "
        f"{row['drops']:,} listed, {_fmt(row['throughput'], 1)} drops/s; " + dropped("skypi"),
        "(no AWS path); " + dropped("pypiserver"),
        "(no AWS path)",
        slope,
        row["p99_s"] <= 5 and listed,
        f"the queue: drops went in at {_fmt(row['drops'] / row['drop_s'], 1)}/s and were listed "
        f"at {_fmt(row['throughput'], 1)}/s; a drop waited "
        f"{_fmt(row['queued_p50_s'], 1)} s (median) for an environment, then "
        f"{_fmt(row['handler_p50_s'], 2)} s in its batch; {_fmt(row['requests_per_drop'], 1)}"
        f" S3 requests per drop, and moto's CPU ({_fmt(1000 * row['moto_cpu_s'] / row['drops'], 0)}"
        " ms per drop) on the same two cores as the handlers (see the burst's section)",
    )


def _s3(results: dict[str, Any]) -> Built:
    rows = results.get("update_cost")
    if not rows:
        return None
    low, top = rows[0], rows[-1]
    sizes = [r["projects"] for r in rows]

    def slope(key: str) -> str:
        return _fmt(growth_exponent(sizes, [float(r[key]) for r in rows]), 2)

    flat = all(r["existing_requests"] == low["existing_requests"] for r in rows) and all(
        r["new_requests"] == low["new_requests"] for r in rows
    )
    bytes_ratio = top["new_bytes"] / low["new_bytes"]
    return (
        f"one upload into a store of {top['projects']:,} projects on S3: requests flat, a new "
        f"project's bytes <= 2x those at {low['projects']:,}",
        f"known project {top['existing_requests']} requests, {_fmt(top['existing_bytes'], 0)} "
        f"bytes; new project {top['new_requests']} requests, {_fmt(top['new_bytes'], 0)} bytes "
        f"({_fmt(bytes_ratio, 2)}x those at {low['projects']:,})"
        + (
            f"; the root listing's rebuild, at most once per window: "
            f"{_fmt(top['rebuild_bytes'], 0)} bytes "
            f"({_fmt(top['rebuild_bytes'] / top.get('burst', 1), 0)} per new project in a "
            f"burst of {top.get('burst', 1)})"
            if "rebuild_bytes" in top
            else ""
        )
        + "; `/simple/` past Lambda's 6 MB answered by a redirect to the stored listing "
        "(asserted by `tests/aws/test_api_lambda.py`, not timed here)",
        "(no S3 path)",
        "(no S3 path)",
        f"requests {slope('existing_requests')} / {slope('new_requests')}, bytes "
        f"{slope('existing_bytes')} / {slope('new_bytes')} (known / new project)",
        flat and bytes_ratio <= 2 if top["projects"] >= 100000 else None,
        "a new project's batch writes "
        + ", ".join(f"{kind} {_fmt(n, 0)}" for kind, n in top["new"]["written"].items())
        + " bytes",
    )


def _cold(results: dict[str, Any]) -> Built:
    cold = results.get("coldstart")
    if not cold:
        return None
    local = results.get("local_start", {}).get("pypiserver.__main__", {})
    said, met = [], True
    for handler in ("skypi.indexer.handler", "skypi.api.handler"):
        row = cold.get(handler)
        if row:
            said.append(
                f"`{handler}` {_fmt(row['import_cpu_s'], 2)} / "
                f"{_fmt(row['first_use_cpu_s'], 2)} CPU-s"
            )
            met = met and row["import_cpu_s"] <= 0.5 and row["first_use_cpu_s"] <= 0.8
    beside = (
        f"(no handler) its server: {_fmt(local['import_cpu_s'], 2)} / "
        f"{_fmt(local['first_use_cpu_s'], 2)} CPU-s"
        if local
        else "(no handler)"
    )
    return (
        "handler import / first event, no bytecode (host CPU) <= 0.5 / 0.8 s",
        "; ".join(said),
        beside,
        "(no handler)",
        NOT_DONE,
        met,
        "the first event builds what the import leaves for it (the indexer or the app, their "
        "botocore clients), compiled from source without bytecode: "
        + "; ".join(
            f"`{h}` {_fmt(r['first_use_cpu_s'] - r['import_cpu_s'], 2)} CPU-s after the import"
            for h, r in cold.items()
            if "first_use_cpu_s" in r and h in ("skypi.indexer.handler", "skypi.api.handler")
        ),
    )


# -- the write path's noise -------------------------------------------------------------


def write_figures(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The write path's figures, each round's, for skypi and pypiserver: twine's upload rate
    (one project of few and of many files, many projects), drop-in to visible, adoption."""
    figures: dict[str, dict[str, Any]] = {}
    writes = results.get("writes", {})
    project = writes.get("project")
    for size in project["sizes"] if project else []:
        figures[f"twine uploads/s into one project of {size:,} files"] = _figure(
            "higher", {peer: _by_round(_project_rows(results, peer).get(str(size)), "upload_fps")
                       for peer in ("skypi", "pypiserver")}
        )  # fmt: skip
    sizes = sorted(int(s) for s in results.get("sizes", {}))
    if sizes:
        top = results["sizes"][str(sizes[-1])]["peers"]
        for key, name, better in (
            ("upload_fps", "twine uploads/s, {:,} projects", "higher"),
            ("drop_in_s", "drop-in to visible s, {:,} projects", "lower"),
        ):
            figures[name.format(sizes[-1])] = _figure(
                better, {peer: _values(top.get(peer, []), key) for peer in ("skypi", "pypiserver")}
            )
    adoption = writes.get("adoption")
    if adoption:
        big = max(adoption["sizes"])
        figures[f"first adoption of {big:,} projects s"] = _figure(
            "lower", {peer: _by_round(adoption["peers"].get(peer, {}).get(str(big)), "ready_s")
                      for peer in ("skypi", "pypiserver")}
        )  # fmt: skip
    if project:
        top_files = max(project["sizes"])
        figures[f"first adoption of one {top_files:,}-file project s"] = _figure(
            "lower", {peer: _by_round(_project_rows(results, peer).get(str(top_files)), "ready_s")
                      for peer in ("skypi", "pypiserver")}
        )  # fmt: skip
    return figures


def _figure(better: str, values: dict[str, list[float]]) -> dict[str, Any]:
    sk, ps = values.get("skypi", []), values.get("pypiserver", [])
    paired = [a / b for a, b in zip(sk, ps, strict=False) if b] if len(sk) == len(ps) else []
    return {"better": better, "skypi": sk, "pypiserver": ps, "ratio": paired}


def previous_figures(old: dict[str, Any]) -> dict[str, Any]:
    """What :func:`write_figures` gives for the last results: the run this one is judged by."""
    try:
        figures = write_figures(old)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return {}
    return {"at": old.get("machine", {}).get("skypi", "?"), "figures": figures}


def noise_section(results: dict[str, Any]) -> list[str]:
    figures = write_figures(results)
    if not figures:
        return []
    previous = results.get("previous", {})
    before = previous.get("figures", {})
    lines = [
        "## The write path: run-to-run noise",
        "",
        "Each write-path figure over the rounds of this run (median, range in brackets; the "
        "spread is the range over the median), skypi beside pypiserver measured in the same "
        "rounds, and skypi / pypiserver round by round (steadier than either figure on a "
        "shared machine). The last columns judge this run against the previous results "
        f"(skypi {previous.get('at', '—')}): within noise when the previous ratio lies in "
        "this run's range of ratios (or, without a ratio, the previous figure in this run's "
        "range).",
        "",
        "| figure | skypi | spread | pypiserver | spread | skypi / pypiserver | previous: "
        "skypi (ratio) | against the previous run |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, figure in figures.items():
        lines.append(_noise_row(name, figure, before.get(name)))
    return [*lines, ""]


def _noise_row(name: str, figure: dict[str, Any], before: dict[str, Any] | None) -> str:
    sk, ps, ratio = figure["skypi"], figure["pypiserver"], figure["ratio"]
    said = NOT_DONE
    old_sk = statistics.median(before["skypi"]) if before and before["skypi"] else math.nan
    old_ratio = statistics.median(before["ratio"]) if before and before["ratio"] else math.nan
    now, then = (ratio, old_ratio) if ratio and not math.isnan(old_ratio) else (sk, old_sk)
    if now and not math.isnan(then):
        higher = figure["better"] == "higher"
        if min(now) <= then <= max(now):
            said = "within noise"
        elif (min(now) > then) == higher:
            said = "better"
        else:
            said = "**worse**"
    return (
        f"| {name} | {ranged(sk)} | {spread(sk)} | {ranged(ps)} | "
        f"{spread(ps)} | {ranged(ratio)} | {_fmt(old_sk, 2)} "
        f"({_fmt(old_ratio, 2)}) | {said} |"
    )
