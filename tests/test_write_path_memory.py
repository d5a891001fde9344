"""What a long-running writer keeps in memory stays bounded, whatever is uploaded: releases of
many files uploaded one by one, releases with descriptions of megabytes."""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from skypi.core.pages import FileEntry, ProjectPage
from skypi.core.release import Release
from skypi.core.site import render_project_site
from skypi.indexer.writer import PageWriter
from skypi.store.local import LocalStore

MB = 1024 * 1024


def _held(run: object) -> int:
    """Bytes still allocated after ``run()`` (what caches kept)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()  # type: ignore[operator]
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_release_of_many_files_uploaded_one_by_one_keeps_each_row_once() -> None:
    """800 uploads to one release: each render's section shares the rows of the last (once
    kept per upload, the rows of all files: about 120 MB here)."""
    moment = datetime(2026, 1, 1, tzinfo=UTC)

    def uploads() -> None:
        files: tuple[FileEntry, ...] = ()
        for i in range(800):
            name = f"wide-1.0-py3-none-platform{i}.whl"
            entry = FileEntry(name, f"packages/wide/{name}", "1.0", f"{i:064x}", 1000, moment)
            files = (*files, entry)
            render_project_site(ProjectPage("wide", "wide", files), Release("1.0"))

    assert _held(uploads) < 40 * MB


def test_kept_descriptions_stay_within_a_size(tmp_path: Path) -> None:
    """120 releases of half a megabyte of description each: a writer keeps some, not all."""
    writer = PageWriter(LocalStore(tmp_path / "packages"))

    def releases() -> None:
        for i in range(120):
            text = f"<p>{i}</p>" + "x" * (MB // 2)
            writer.add_release(ProjectPage.empty("big").name, Release(f"1.{i}", "", text))

    assert _held(releases) < 45 * MB
    assert writer.release(ProjectPage.empty("big").name, "1.0") is not None  # read again
