"""A body cut short part-way (the connection reset once the answer began) on a whole-object
read: botocore retries requests, not bodies, so the store asks again, a bounded number of
times."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import IncompleteReadError

from skypi.store.base import Unavailable
from skypi.store.s3 import BODY_ATTEMPTS, S3Store
from tests.emulated import s3_store


class _CutBody:
    def __init__(self, body: Any) -> None:
        self.body = body

    def read(self, amt: int | None = None) -> bytes:
        self.body.read(5)
        raise IncompleteReadError(actual_bytes=5, expected_bytes=100)

    def close(self) -> None:
        self.body.close()


class _Cutting:
    """A client whose first ``cuts`` GetObject answers break part-way through their body."""

    def __init__(self, client: Any, cuts: int) -> None:
        self.client, self.cuts, self.gets = client, cuts, 0

    def get_object(self, **kwargs: Any) -> Any:
        self.gets += 1
        response = self.client.get_object(**kwargs)
        if self.gets <= self.cuts:
            response["Body"] = _CutBody(response["Body"])
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _store(moto_endpoint: str, cuts: int) -> tuple[S3Store, _Cutting]:
    real = s3_store(moto_endpoint)
    real.put("simple/demo/index.json", b'{"files": []}')
    cutting = _Cutting(real.client, cuts)
    return S3Store(real.bucket, cutting), cutting  # type: ignore[arg-type]


def test_a_body_cut_short_is_read_again(moto_endpoint: str) -> None:
    store, client = _store(moto_endpoint, BODY_ATTEMPTS - 1)
    assert store.get("simple/demo/index.json")[1] == b'{"files": []}'
    assert client.gets == BODY_ATTEMPTS


def test_a_body_cut_short_every_time_is_unavailable(moto_endpoint: str) -> None:
    store, client = _store(moto_endpoint, BODY_ATTEMPTS)
    with pytest.raises(Unavailable, match=r"simple/demo/index\.json"):
        store.get("simple/demo/index.json")
    assert client.gets == BODY_ATTEMPTS
