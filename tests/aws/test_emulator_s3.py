"""Where moto differs from S3 and ``skypi dev`` puts it right: each such rule, as S3 documents
it, held against the running emulator."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.s3.models import S3Backend

from skypi.store.base import PreconditionFailed
from tests.emulated import s3_store


def test_two_compare_and_swaps_on_one_etag_never_both_succeed(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 checks a conditional write's ETag and stores the object as one step: of two writes
    on one ETag, one is stored and the other answered 412
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). moto
    checks, then stores; the emulator makes that one step. A slow store (as under load)
    would otherwise let both writes through."""
    store = s3_store(moto_endpoint)
    first = store.put("simple/cas/index.json", b"0")
    original = S3Backend.put_object

    def slow_put(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)  # between moto's check and its store
        return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", slow_put)

    def swap(value: bytes) -> bool:
        try:
            store.put("simple/cas/index.json", value, if_match=first.etag)
        except PreconditionFailed:
            return False
        return True

    with ThreadPoolExecutor(max_workers=2) as pool:
        won = list(pool.map(swap, [b"1", b"2"]))
    assert sorted(won) == [False, True]
    assert store.get("simple/cas/index.json")[1] == (b"1" if won[0] else b"2")
