"""Faults the tier found, each staged once, deterministically."""

from __future__ import annotations

import errno
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from skypi.core.pages import ProjectPage, RootListing, page_json_key
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer, Landed
from skypi.store.base import Body, ObjectInfo
from skypi.store.local import LocalStore
from skypi.store.s3 import BODY_ATTEMPTS
from tests.dists import wheel_bytes, wheel_name
from tests.emulated import s3_store
from tests.faults.injector import BotocoreFaults, Faults


class _OnCall(Faults):
    """A fault of ``kind`` on the ``nth`` request of ``operation`` (and the ``times - 1``
    requests of it that follow)."""

    def __init__(self, operation: str, nth: int, kind: str, times: int = 1) -> None:
        super().__init__(0, {})
        self.operation, self.nth, self.kind, self.times = operation, nth, kind, times

    def draw(self, operation: str, kinds: tuple[str, ...]) -> str | None:
        self.requests[operation] += 1
        if operation == self.operation and 0 <= self.requests[operation] - self.nth < self.times:
            self.injected[self.kind] += 1
            return self.kind
        return None


@pytest.mark.parametrize("error", ["timeout", "reset"])
@pytest.mark.parametrize("cuts", [1, BODY_ATTEMPTS])
def test_a_drop_in_whose_transfer_is_cut_short_is_retried_not_refused(
    moto_endpoint: str, error: str, cuts: int
) -> None:
    """A read of a dropped file that times out or is reset part-way says nothing about the
    file: the store reads it again, and listed it is; cut short on every attempt, its
    project fails (the SQS record is retried), and the retry lists it."""
    store = s3_store(moto_endpoint)
    key = f"packages/demo/{wheel_name('demo', '1.0')}"
    store.put(key, wheel_bytes("demo", "1.0"))
    faults = _OnCall("GetObject", 2, "reset", cuts)  # the first GET reads the (missing) page
    faults.coin = lambda: error == "timeout"  # type: ignore[method-assign]
    BotocoreFaults(faults, store.client)
    indexer = Indexer(store)
    outcome = indexer.apply([Landed(key)], isolate=True)
    assert faults.injected["reset"] == cuts
    if cuts < BODY_ATTEMPTS:
        assert (outcome.refused, outcome.added) == ([], [wheel_name("demo", "1.0")])
        return
    assert (outcome.refused, list(outcome.failed)) == ([], ["demo"])
    assert indexer.apply([Landed(key)]).added == [wheel_name("demo", "1.0")]


class _FailsOnce(LocalStore):
    """A full disk for one write, of the first key that ends in ``suffix``."""

    def __init__(self, folder: Path, suffix: str) -> None:
        super().__init__(folder)
        self.suffix: str | None = suffix

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        if self.suffix is not None and key.endswith(self.suffix):
            self.suffix = None
            raise OSError(errno.ENOSPC, "No space left on device", key)
        return super().put(key, body, **kwargs)


def _stores(tmp_path: Path, moto_endpoint: str, suffix: str) -> list[Any]:
    s3 = s3_store(moto_endpoint)
    failing = Counter[str]()

    def fail_once(params: dict[str, Any], **_: Any) -> None:
        if str(params.get("Key", "")).endswith(suffix) and not failing[suffix]:
            failing[suffix] += 1
            raise OSError(errno.EIO, "injected: the write did not happen")

    s3.client.meta.events.register("provide-client-params.s3.PutObject", fail_once)
    return [_FailsOnce(tmp_path / "packages", suffix), s3]


@pytest.mark.parametrize(
    "suffix", ["index.html", "index.v1html.gz", "index.json.gz", "simple/index.json"]
)
@pytest.mark.parametrize("path", ["folder", "s3"])
def test_a_write_stopped_after_the_page_swap_is_finished_by_the_retry(
    tmp_path: Path, moto_endpoint: str, suffix: str, path: str
) -> None:
    """The page's swap is the commit; what follows it (the HTML twins, gzip variants, the page
    for people) and the root listing are written after. A fault there fails the batch, and
    its retry (an SQS redelivery, the watcher's next try) finds the file listed already: it
    must still finish them."""
    folder, s3 = _stores(tmp_path, moto_endpoint, suffix)
    store = folder if path == "folder" else s3
    key = f"packages/demo/{wheel_name('demo', '1.0')}"
    data = wheel_bytes("demo", "1.0")
    store.put(key, data)
    with pytest.raises(OSError, match=r"injected|No space"):
        Indexer(store).apply([Landed(key)])
    Indexer(store).apply([Landed(key)])  # the retry, in a fresh process
    page = ProjectPage.from_json_bytes(store.get(page_json_key("demo"))[1])
    assert [f.sha256 for f in page.files] == [hashlib.sha256(data).hexdigest()]
    assert list(RootListing.from_json_bytes(store.get("simple/index.json")[1]).projects) == ["demo"]
    assert Rebuilder(Indexer(store)).run(check=True).drift == []
