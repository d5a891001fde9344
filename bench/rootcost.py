"""What a new project costs the root listing (``/simple/``), against the number of projects.

A root listing of N projects (PyPI-shaped names, summaries of 4 to 12 words: about 50
characters, as on PyPI) is written by the indexer's own page writer into a folder store; then
one more project is added the way the indexer adds it (``PageWriter.update_root``, with the
look at its page), while a wrapper around the store counts the requests and the bytes written.
The same requests go to S3 on AWS (the write path is shared); their bytes are the same.
The listing's bytes per project are given too, by object, and what the read path answers for
``/simple/`` without compression and with gzip.

    .venv/bin/python bench/rootcost.py [N ...]
"""

from __future__ import annotations

import hashlib
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "functions"))

from packaging.utils import NormalizedName, canonicalize_name  # noqa: E402

from skypi.core.keys import ROOT_HTML_KEY, ROOT_JSON_KEY, gzip_key  # noqa: E402
from skypi.core.pages import FileEntry, ProjectPage, RootEntry, root_entry  # noqa: E402
from skypi.indexer.writer import PageWriter  # noqa: E402
from skypi.store.base import Body, ObjectInfo  # noqa: E402
from skypi.store.local import LocalStore  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
# Words of PyPI names and summaries, drawn at random.
VOCABULARY = (
    "data async client django flask py tools test api cloud aws json http web utils core sdk lib "
    "plugin parser yaml config ml torch model cli server fast micro stream"
)
WORDS = VOCABULARY.split()


class CountingStore:
    """A store that counts the requests made of it and the bytes put."""

    def __init__(self, inner: LocalStore) -> None:
        self.inner = inner
        self.requests: Counter[str] = Counter()
        self.bytes_put = 0

    def head(self, key: str) -> ObjectInfo | None:
        self.requests["HEAD"] += 1
        return self.inner.head(key)

    def get(self, key: str) -> tuple[ObjectInfo, bytes]:
        self.requests["GET"] += 1
        return self.inner.get(key)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        self.requests["GET"] += 1
        return self.inner.read_range(key, start, length)

    def open(self, key: str, start: int = 0) -> AbstractContextManager[BinaryIO]:
        self.requests["GET"] += 1
        return self.inner.open(key, start)

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        self.requests["PUT"] += 1
        self.bytes_put += len(body) if isinstance(body, bytes) else 0
        return self.inner.put(key, body, **kwargs)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self.requests["DELETE"] += 1
        self.inner.delete(key, if_match=if_match)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self.requests["LIST"] += 1
        return self.inner.list(prefix)


def listing(projects: int, rng: random.Random) -> dict[NormalizedName, RootEntry]:
    shown = {}
    for i in range(projects):
        name = "-".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) + f"-{i}"
        display = name.title() if i % 3 == 0 else name
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        shown[canonicalize_name(name)] = RootEntry(display, words.capitalize())
    return shown


def new_project(store: LocalStore) -> tuple[NormalizedName, Any]:
    """A project's first page, written as the indexer writes it (its root entry is next)."""
    name = NormalizedName("brand-new")
    data = b"wheel"
    entry = FileEntry(
        filename="brand_new-1.0-py3-none-any.whl",
        key="packages/brand-new/brand_new-1.0-py3-none-any.whl",
        version="1.0",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        upload_time=datetime(2026, 1, 1, tzinfo=UTC),
    )
    page = ProjectPage.empty("Brand_New").with_files((entry,))
    written = PageWriter(store).update(name, lambda _: page)
    assert written is not None
    return name, written


def one_new_project(projects: int) -> dict[str, Any]:
    rng = random.Random(23)
    with tempfile.TemporaryDirectory(prefix="skypi-rootcost-") as tmp:
        local = LocalStore(Path(tmp) / "packages")
        PageWriter(local).update_root(listing(projects, rng), force=True)
        sizes = {
            "json": local.head(ROOT_JSON_KEY),
            "json.gz": local.head(gzip_key(ROOT_JSON_KEY)),
            "html (each twin)": local.head(ROOT_HTML_KEY),
            "html.gz (each twin)": local.head(gzip_key(ROOT_HTML_KEY)),
        }
        new, written = new_project(local)
        store = CountingStore(local)
        writer = PageWriter(store)  # the Store protocol, counted
        writer.read_root()  # a warm process holds the listing's ETag, as the indexer does
        store.requests.clear()
        started = time.process_time()
        after = writer.update_root({new: root_entry(written.after)}, seen={new: written.etag})
        cpu = time.process_time() - started
        assert after is not None
        assert new in after.projects
        return {
            "projects": projects,
            "requests": dict(store.requests),
            "bytes_put": store.bytes_put,
            "cpu_s": cpu,
            "objects": {k: v.size if v else 0 for k, v in sizes.items()},
        }


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or list(SIZES)
    rows = [one_new_project(n) for n in sizes]
    base = rows[0]["bytes_put"]
    for row in rows:
        n = row["projects"]
        per = ", ".join(f"{k} {v / n:.1f}" for k, v in row["objects"].items())
        print(
            f"{n:>7,} projects: a new project writes {row['bytes_put']:>11,} B "
            f"({row['bytes_put'] / base:5.1f}x the first size) in "
            f"{sum(row['requests'].values())} requests {row['requests']}, "
            f"{row['cpu_s'] * 1000:.0f} ms CPU; bytes per project: {per}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
