"""The stored bytes of every page, byte for byte: ``simple/`` (JSON pages, their HTML twins,
the gzip variants), ``site/`` (the pages for people, release descriptions, the landing page),
``held/`` (a quarantined project's entries) and ``integrity/`` (provenance) for one rich
corpus, indexed on a folder with a fixed clock and in a fixed order.

The corpus has drop-ins and API uploads, sdists and wheels, a local version, a PEP 740
provenance (a real sigstore attestation), a refused second sdist, a conflicting copy, a
byte-identical copy, a file overwritten in place, a deleted file and a deleted project, yanks
with and without a reason, and every PEP 792 status (a quarantined project's files held).

A change that alters a page on purpose regenerates the golden files, and its commit says which
behaviour changed::

    SKYPI_REGENERATE_GOLDEN=1 .venv/bin/pytest -q tests/test_golden_pages.py

Any other change must leave every byte as it is.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pytest

from skypi.api.publish import Uploader
from skypi.core.errors import UploadRejected
from skypi.core.keys import HELD_PREFIX, INTEGRITY_PREFIX, SIMPLE_PREFIX, SITE_PREFIX
from skypi.core.upload import validate_filename, validate_form
from skypi.indexer.admin import Admin
from skypi.indexer.service import Gone, Indexer, Landed, Outcome
from skypi.store.base import Body, ObjectInfo, Store
from skypi.store.local import LocalStore
from tests.dists import (
    sdist_bytes,
    sdist_name,
    upload_form,
    wheel_bytes,
    wheel_name,
    zip_sdist_bytes,
)
from tests.oidc import github_claims

GOLDEN = Path(__file__).parent / "golden" / "folder"
ASSETS = Path(__file__).parent / "assets" / "pep740"
ATTESTED = "pypi_attestations-0.0.19.tar.gz"  # signed by trailofbits/pypi-attestations
REGENERATE = os.environ.get("SKYPI_REGENERATE_GOLDEN") == "1"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PREFIXES = (SIMPLE_PREFIX, SITE_PREFIX, HELD_PREFIX, INTEGRITY_PREFIX)


def is_stamped(key: str) -> bool:
    """Whether storing ``key`` ticks the clock: a distribution (not its ``.metadata``)."""
    return key.startswith("packages/") and not key.endswith(".metadata")


class FixedClockStore(LocalStore):
    """A folder whose distributions are stamped, as they are stored or dropped in, with the
    next tick of a fixed clock (a minute apart): their upload times and ETags are the same on
    every run."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.ticks = 0

    def stamp(self, key: str) -> None:
        self.ticks += 1
        ns = int(START.timestamp() + 60 * self.ticks) * 1_000_000_000
        os.utime(self.path_for(key), ns=(ns, ns))

    def put(self, key: str, body: Body, **kwargs: object) -> ObjectInfo:
        info = super().put(key, body, **kwargs)  # type: ignore[arg-type]
        if not is_stamped(key):
            return info
        self.stamp(key)
        stamped = self.head(key)
        assert stamped is not None
        return stamped


class Site(Protocol):
    """Where the corpus is stored and indexed: a folder here, S3 on moto in
    ``tests/aws/test_golden_pages_s3.py``. Distributions are stamped with the next tick of a
    fixed clock as they are stored or dropped in."""

    @property
    def store(self) -> Store: ...

    @property
    def indexer(self) -> Indexer:
        """The API's: uploads and admin actions."""
        ...

    def drop(self, key: str, data: bytes) -> str:
        """A file copied in (a drop-in), not indexed yet."""
        ...

    def index(self, keys: list[str]) -> Outcome | None:
        """What the drop-ins of ``keys`` cause: one batch (its outcome, where it is seen)."""
        ...

    def remove(self, key: str) -> None:
        """A file removed by hand, and what its removal causes."""
        ...

    def settle(self) -> None:
        """What follows an API action (on S3, the storage events it caused)."""
        ...


class FolderSite:
    """The corpus on a folder, indexed in process (as ``skypi serve`` does)."""

    def __init__(self, store: FixedClockStore) -> None:
        self.store = store
        self.indexer = Indexer(store)

    def drop(self, key: str, data: bytes) -> str:
        path = self.store.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.store.stamp(key)
        return key

    def index(self, keys: list[str]) -> Outcome:
        return self.indexer.apply([Landed(key) for key in keys])

    def remove(self, key: str) -> None:
        self.store.path_for(key).unlink()
        self.indexer.apply([Gone(key)])

    def settle(self) -> None:
        pass


def _upload(uploader: Uploader, project: str, version: str, filename: str, data: bytes) -> None:
    fields = {k: [v] for k, v in upload_form(data, filename, project, version).items()}
    form = validate_form(fields)
    uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))


def _attested_upload(uploader: Uploader) -> None:
    data = (ASSETS / ATTESTED).read_bytes()
    attestation = json.loads((ASSETS / f"{ATTESTED}.publish.attestation").read_text())
    fields = upload_form(data, ATTESTED, "pypi-attestations", "0.0.19")
    fields["attestations"] = json.dumps([attestation])
    form = validate_form({k: [v] for k, v in fields.items()})
    claims = github_claims("trailofbits/pypi-attestations")
    uploader.publish(form, validate_filename(form, ATTESTED), io.BytesIO(data), claims)


def build_corpus(site: Site) -> None:
    """Index the corpus in a fixed order: every step a batch of its own."""
    store = site.store
    uploader = Uploader(store, site.indexer, max_size=10 * 1024 * 1024)
    admin = Admin(site.indexer)

    def wheel(project: str, version: str, **kwargs: object) -> str:
        key = f"packages/{project}/{wheel_name(project, version)}"
        return site.drop(key, wheel_bytes(project, version, **kwargs))  # type: ignore[arg-type]

    # drop-ins: wheels and sdists, a local version, a zip sdist, several projects in one batch
    first = [
        wheel("alpha", "1.0", requires_python=">=3.9"),
        site.drop(f"packages/alpha/{sdist_name('alpha', '1.0')}", sdist_bytes("alpha", "1.0")),
        wheel("alpha", "2.0", requires=("requests>=2",)),
        wheel("alpha", "2.0+cpu"),
        wheel("Beta-Project", "0.1"),
        site.drop("packages/gamma/gamma-3.0.zip", zip_sdist_bytes("gamma", "3.0")),
        wheel("delta", "1.0"),
        wheel("epsilon", "0.9"),
    ]
    outcome = site.index(first)
    assert outcome is None or not outcome.refused
    # API uploads: a new release, and a file with a PEP 740 provenance
    _upload(uploader, "alpha", "2.1", wheel_name("alpha", "2.1"), wheel_bytes("alpha", "2.1"))
    site.settle()
    _attested_upload(uploader)
    site.settle()
    # refused: a second sdist of a release; an upload of a name listed with other bytes
    second = sdist_name("alpha", "1.0.0")  # 1.0.0 is the release 1.0
    with pytest.raises(UploadRejected, match="one sdist"):
        _upload(uploader, "alpha", "1.0.0", second, sdist_bytes("alpha", "1.0.0"))
    other = wheel_bytes("alpha", "1.0", payload=b"other bytes")
    with pytest.raises(UploadRejected, match="File already exists"):
        _upload(uploader, "alpha", "1.0", wheel_name("alpha", "1.0"), other)
    # drop-ins: a conflicting copy in another folder, a byte-identical copy, an overwrite
    beta = store.get(first[4])[1]
    outcome = site.index(
        [
            site.drop(f"packages/alpha/old/{wheel_name('alpha', '1.0')}", other),
            site.drop("packages/Beta-Project/copy/" + first[4].rsplit("/", 1)[1], beta),
        ]
    )
    assert outcome is None or len(outcome.conflicts) == 1, outcome
    assert outcome is None or len(outcome.duplicates) == 1, outcome
    overwritten = wheel_bytes("alpha", "2.0", payload=b"changed in place")
    site.index([site.drop(first[2], overwritten)])
    # a deleted file (the project's last: it leaves the root listing), a file removed by hand
    admin.delete("delta", wheel_name("delta", "1.0"))
    site.settle()
    site.remove(first[3])
    # yanks, with and without a reason; every project status
    admin.yank("alpha", filename=wheel_name("alpha", "1.0"), reason="broken on 3.13")
    admin.yank("alpha", filename=sdist_name("alpha", "1.0"))
    admin.set_status("beta-project", "quarantined", "under review")
    admin.set_status("gamma", "archived", "moved to gamma2")
    admin.set_status("epsilon", "deprecated")


def stored_pages(store: Store) -> dict[str, bytes]:
    """Every page and what only pages lead to (held files, provenance), by key."""
    return {
        info.key: store.get(info.key)[1]
        for prefix in PREFIXES
        for info in sorted(store.list(prefix), key=lambda i: i.key)
    }


def _golden() -> Iterator[tuple[str, bytes]]:
    for path in sorted(GOLDEN.rglob("*")):
        if path.is_file():
            yield path.relative_to(GOLDEN).as_posix(), path.read_bytes()


def _explain(key: str, want: bytes, got: bytes) -> str:
    if key.endswith(".gz"):
        return f"{key}: {len(got)} bytes, golden {len(want)}"
    lines = difflib.unified_diff(
        want.decode(errors="replace").splitlines(),
        got.decode(errors="replace").splitlines(),
        "golden/" + key,
        key,
        lineterm="",
        n=1,
    )
    return "\n".join(list(lines)[:40])


def test_every_stored_page_matches_its_golden_bytes(tmp_path: Path) -> None:
    store = FixedClockStore(tmp_path / "packages")
    build_corpus(FolderSite(store))
    got = stored_pages(store)
    if REGENERATE:
        for path in sorted(GOLDEN.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        for key, body in got.items():
            (GOLDEN / key).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / key).write_bytes(body)
    want = dict(_golden())
    assert sorted(got) == sorted(want), "stored keys differ from tests/golden/folder"
    differing = [_explain(k, want[k], got[k]) for k in sorted(got) if got[k] != want[k]]
    assert not differing, "\n\n".join(differing)


def test_the_corpus_is_the_same_on_every_run(tmp_path: Path) -> None:
    """The golden files mean something only if nothing but the code changes them."""
    runs: list[dict[str, bytes]] = []
    for name in ("one", "two"):
        time.sleep(1.1 if runs else 0)  # a second apart: what a real clock would stamp differs
        store = FixedClockStore(tmp_path / name)
        build_corpus(FolderSite(store))
        runs.append(stored_pages(store))
    assert runs[0] == runs[1]
