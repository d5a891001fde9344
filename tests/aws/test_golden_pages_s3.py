"""The golden corpus (``tests/test_golden_pages.py``) stored in S3 on moto, as on AWS: drop-ins
are plain PUTs whose storage events reach the indexer Lambda's handler through SQS; uploads and
admin actions go through the API's own classes over the S3 store. Every stored page must be
the folder's golden bytes, but for what S3 itself makes differ:

- a file entry's ``_etag`` in the JSON pages (and in a quarantined project's held entries):
  S3's ETag is the MD5 of the bytes, a folder's is its mtime and size. Each is replaced by the
  key it belongs to on both sides, and every other byte compared;
- a gzip variant whose page differs only by those ETags: it must hold its page's very bytes;
- the file overwritten in place (``alpha-2.0``): a versioned bucket (the stack's) gets the
  original back, so ``alpha``'s pages keep listing its first bytes, where a folder, which keeps
  no earlier version, lists the new ones. Those pages are compared with that entry set aside;
  not written again for the overwrite, they and the landing page keep serials one lower.

The upload times are the same because moto runs in this process: its clock is the folder's.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from skypi.core.keys import HELD_PREFIX
from skypi.core.pages import held_digest
from skypi.indexer.service import Indexer
from skypi.store.base import Body, ObjectInfo
from skypi.store.s3 import S3Store
from tests.aws.conftest import Emulated
from tests.test_golden_pages import (
    START,
    _explain,
    _golden,
    build_corpus,
    is_stamped,
    stored_pages,
)

OVERWRITTEN = "packages/alpha/alpha-2.0-py3-none-any.whl"
# The pages that list the overwritten file: the original's bytes on S3, the new ones on a folder.
RESTORED = {f"simple/alpha/index.{kind}" for kind in ("json", "html", "v1html")} | {
    "site/project/alpha/index.html"
}
# The pages a folder writes once more, for its take-over of the overwritten bytes: their
# serials are one ahead of S3's.
WRITTEN_AGAIN = RESTORED | {"site/index.html"}
SERIAL = re.compile(rb'(skypi:serial" content="|"_last-serial":|\{"serial":)(\d+)')
ETAG = re.compile(rb'"_key":"([^"]+)","_version":"([^"]*)","_etag":"\\"[^"\\]*\\""')


class Clock:
    """One fixed clock for moto's S3 (an object's Last-Modified) and for the API's store (the
    time an upload is stored, which the page lists): a distribution stored is the next minute,
    as the folder corpus's clock stamps it."""

    def __init__(self) -> None:
        self.ticks = 0

    def now(self) -> datetime:
        return START.replace(tzinfo=None) + timedelta(minutes=self.ticks)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """moto stamps objects with this clock, which ticks as a distribution is stored (moto runs
    in this process: see ``start_moto``)."""
    from moto.s3 import models

    clock = Clock()
    put_object = models.S3Backend.put_object

    def stamped_put(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        if is_stamped(key_name):
            clock.ticks += 1
        return put_object(self, bucket_name, key_name, *args, **kwargs)

    monkeypatch.setattr(models, "utcnow", clock.now)
    monkeypatch.setattr(models.S3Backend, "put_object", stamped_put)
    return clock


class FixedClockS3Store(S3Store):
    """The API's S3 store, whose uploads are listed at the Last-Modified S3 stamped (the
    adapter takes its own clock's time: a PUT's answer carries none)."""

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        info = super().put(key, body, **kwargs)
        if not is_stamped(key):
            return info
        stamped = self.head(key)
        assert stamped is not None
        return stamped


class S3Site:
    """The corpus in S3: drop-ins indexed by the indexer Lambda's handler from their events."""

    def __init__(self, aws: Emulated) -> None:
        self.aws = aws
        self.store = FixedClockS3Store(aws.resources.bucket, aws.s3)
        self.indexer = Indexer(self.store)

    def drop(self, key: str, data: bytes) -> str:
        self.aws.drop(key, data)  # what `aws s3 cp` does
        return key

    def index(self, keys: list[str]) -> None:
        self.settle()

    def remove(self, key: str) -> None:
        self.aws.s3.delete_object(Bucket=self.aws.resources.bucket, Key=key)
        self.settle()

    def settle(self) -> None:
        self.aws.poller.drain()


def _etags_named(body: bytes) -> bytes:
    """A JSON page or record with each file entry's ETag replaced by its key."""
    return ETAG.sub(rb'"_key":"\1","_version":"\2","_etag":"<etag of \1>"', body)


def _normalized(pages: dict[str, bytes]) -> dict[str, bytes]:
    """Every page but the gzip variants, ETags named; a quarantined project's held entries
    (which carry ETags) are named by the SHA-256 of their bytes so named, under their key and
    in the page that names them."""
    named = {k: _etags_named(v) for k, v in pages.items() if not k.endswith(".gz")}
    renamed: dict[bytes, bytes] = {}
    for key in [k for k in named if k.startswith(HELD_PREFIX)]:
        digest = key.rsplit("/", 1)[1].removesuffix(".json")
        renamed[digest.encode()] = held_digest(named[key]).encode()
        named[key.replace(digest, renamed[digest.encode()].decode())] = named.pop(key)
    for old, new in renamed.items():
        named = {k: v.replace(old, new) for k, v in named.items()}
    return named


def _serial_back(body: bytes) -> bytes:
    """A page as it was one write earlier, as far as its serial goes."""
    return SERIAL.sub(lambda m: m[1] + str(int(m[2]) - 1).encode(), body)


def _without(key: str, body: bytes) -> Any:
    """A page of ``alpha`` without what it says of the overwritten file."""
    if key not in RESTORED:
        return body
    if key.endswith(".json"):
        page = json.loads(body)
        page["files"] = [f for f in page["files"] if f.get("_key") != OVERWRITTEN]
        return page
    return [
        line for line in body.splitlines() if OVERWRITTEN.rsplit("/", 1)[1].encode() not in line
    ]


def _variants(got: dict[str, bytes], want: dict[str, bytes]) -> Iterator[str]:
    """Each gzip variant that is not its page's bytes, or not the golden variant's bytes when
    its page is the golden page's."""
    for key in sorted(k for k in got if k.endswith(".gz")):
        page = key.removesuffix(".gz")
        if gzip.decompress(got[key]) != got[page]:
            yield f"{key} does not hold {page}"
        elif got[page] == want[page] and got[key] != want[key]:
            yield f"{key}: {len(got[key])} bytes, golden {len(want[key])}"


def test_every_page_stored_in_s3_is_the_folders_golden_page(aws: Emulated, clock: Clock) -> None:
    build_corpus(S3Site(aws))
    got, want = stored_pages(aws.store), dict(_golden())
    named, golden = _normalized(got), _normalized(want)
    assert sorted(named) == sorted(golden), "stored keys differ from tests/golden/folder"
    for key in WRITTEN_AGAIN:
        golden[key] = _serial_back(golden[key])
    differing = [
        _explain(k, golden[k], named[k])
        for k in sorted(named)
        if _without(k, named[k]) != _without(k, golden[k])
    ]
    assert not differing, "\n\n".join(differing)
    assert not list(_variants(got, want))
    # What differs at all: ETags (JSON pages, held entries: named by their digest, which the
    # quarantined project's page names), and what the restore leaves as it was.
    changed = {k.removesuffix(".gz") for k in got if got[k] != want.get(k)}
    assert {k for k in changed if not k.startswith(HELD_PREFIX)} == WRITTEN_AGAIN | {
        f"simple/{project}/index.json"
        for project in ("beta-project", "epsilon", "gamma", "pypi-attestations")  # with files
    }
