"""Bytes on the wire for index pages, without and with their gzip variants.

A project with 1,000 files and the root listing at 2,000 projects are written by the indexer's
own page writers into a folder store, then read through the read path every edge shares
(the API's read routes; CloudFront sends the same stored objects): once as a client that
accepts no compression, once with ``Accept-Encoding: gzip`` as pip and uv send it. The figures
are the response bodies' bytes as sent (not decoded).

    .venv/bin/python bench/compression.py
"""

from __future__ import annotations

import hashlib
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from fastapi.testclient import TestClient  # noqa: E402
from packaging.utils import NormalizedName, canonicalize_name  # noqa: E402

from skypi.api.app import create_app  # noqa: E402
from skypi.core.http import gzip_page  # noqa: E402
from skypi.core.pages import (  # noqa: E402
    FileEntry,
    ProjectPage,
    page_json_key,
)
from skypi.indexer.service import Indexer  # noqa: E402
from skypi.store.local import LocalStore  # noqa: E402

ACCEPTS = {
    "JSON": "application/vnd.pypi.simple.v1+json",
    "HTML": "text/html",
}
TAGS = (
    "py3-none-any",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp313-cp313-win_amd64",
    "cp313-cp313-musllinux_1_2_aarch64",
)


def project_page(name: str, files: int, rng: random.Random) -> ProjectPage:
    """A page like a real busy project's: wheels for several platforms per release, an sdist,
    hashes (incompressible), sizes, upload times, Requires-Python and PEP 658 hashes."""
    entries = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    module = name.replace("-", "_")
    for i in range(files):
        version = f"{i // len(TAGS) // 10}.{i // len(TAGS) % 10}.{i % 7}"
        tag = TAGS[i % len(TAGS)]
        filename = f"{module}-{version}-{tag}.whl" if i % 6 else f"{module}-{version}.tar.gz"
        entries.append(
            FileEntry(
                filename=filename,
                key=f"packages/{name}/{filename}",
                version=version,
                sha256=hashlib.sha256(rng.randbytes(16)).hexdigest(),
                size=rng.randrange(10_000, 50_000_000),
                upload_time=start + timedelta(minutes=37 * i),
                requires_python=">=3.9",
                metadata_sha256=hashlib.sha256(rng.randbytes(16)).hexdigest() if i % 6 else None,
                etag=f'"{rng.randbytes(16).hex()}"',
            )
        )
    return ProjectPage.empty(name).with_files(tuple(entries))


def write_pages(store: LocalStore, files: int, projects: int) -> str:
    """One big project and a root listing of ``projects`` names, each with its variants, by
    the indexer's writers; returns the big project's name."""
    rng = random.Random(14)
    indexer = Indexer(store)
    name = "busy-project"
    page = project_page(name, files, rng)
    indexer.pages.update(canonicalize_name(name), lambda _: page)
    shown: dict[NormalizedName, tuple[str | None, str]] = {}
    for i in range(projects):
        prefix = rng.choice(["py", "django", "aws", "data", "ml"])
        display = f"{prefix}-{rng.randbytes(3).hex()}-{i}"
        shown[canonicalize_name(display)] = (display, "")
    indexer.pages.update_root(shown)
    return name


def wire_bytes(client: TestClient, path: str, accept: str, encoding: str | None) -> int:
    headers = {"Accept": accept, "Accept-Encoding": encoding or "identity"}
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, response.status_code
        assert response.headers.get("content-encoding") == encoding
        return sum(len(chunk) for chunk in response.iter_raw())


def run(files: int = 1000, projects: int = 2000) -> dict[str, Any]:
    results: dict[str, Any] = {"files": files, "projects": projects, "pages": {}}
    with tempfile.TemporaryDirectory(prefix="skypi-compression-") as tmp:
        store = LocalStore(Path(tmp) / "packages")
        started = time.perf_counter()
        name = write_pages(store, files, projects)
        results["write_s"] = time.perf_counter() - started
        page = store.get(page_json_key(canonicalize_name(name)))[1]
        started = time.perf_counter()
        for _ in range(5):
            gzip_page(page)
        results["gzip_ms_largest_page"] = (time.perf_counter() - started) / 5 * 1000
        client = TestClient(create_app(store))
        client.headers.pop("accept-encoding")
        for label, path in (
            (f"project, {files:,} files", f"/simple/{name}/"),
            (f"root, {projects:,} projects", "/simple/"),
        ):
            for kind, accept in ACCEPTS.items():
                plain = wire_bytes(client, path, accept, None)
                gzipped = wire_bytes(client, path, accept, "gzip")
                results["pages"][f"{label}, {kind}"] = {"identity": plain, "gzip": gzipped}
    return results


def main() -> int:
    results = run()
    for label, row in results["pages"].items():
        ratio = row["gzip"] / row["identity"]
        print(f"{label}: {row['identity']:,} B -> {row['gzip']:,} B gzip ({ratio:.1%})")
    cost = results["gzip_ms_largest_page"]
    print(f"compressing the {results['files']:,}-file JSON page: {cost:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
