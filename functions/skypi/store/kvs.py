"""The CloudFront KeyValueStore the edge function reads: its token hashes (``skypi.edge_tokens``)
and a record of each quarantined project (PEP 792), which :class:`EdgeQuarantine` keeps.

A write is one UpdateKeys with the store's ETag as precondition (the store's optimistic
protocol): another writer's change in between is a ``ConflictException``, and the write is
described and sent again. Throttling and network errors are botocore's to retry
(``skypi.store.aws``); what still fails is raised, as :class:`EdgeWriteFailed` by
:class:`EdgeQuarantine`, so the caller can leave its change undone or say how to finish it.

Limits (Amazon CloudFront Developer Guide, "Quotas on key value stores" and "File format for
key-value pairs"): a key of at most 512 bytes, a value of at most 1 KB, 5 MB per store, and
at most 50 keys changed per UpdateKeys; ``KeyValueStoreEmulation`` in ``skypi.local.emulator``
applies them in the tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, cast

from botocore.exceptions import BotoCoreError, ClientError

from skypi.core.keys import (
    QUARANTINE_RECORD_PREFIX,
    QUARANTINE_RECORD_VALUE,
    quarantine_record_key,
    quarantined_project,
)
from skypi.core.tokens import EDGE_MAX_KEY_BYTES, EDGE_MAX_VALUE_BYTES
from skypi.store.aws import create_client
from skypi.store.base import EdgeWriteFailed

if TYPE_CHECKING:
    from mypy_boto3_cloudfront_keyvaluestore import CloudFrontKeyValueStoreClient

log = logging.getLogger("skypi.edge")
KVS_VARIABLE = "SKYPI_KVS_ARN"
MAX_KEYS_PER_CALL = 50  # UpdateKeys takes at most 50 puts and deletes together
ATTEMPTS = 8


class KeyValueStore:
    """One KeyValueStore: conditional updates (puts and deletes) and listing its keys."""

    def __init__(self, arn: str, client: CloudFrontKeyValueStoreClient | None = None) -> None:
        self.arn = arn
        self._client = client

    @property
    def client(self) -> CloudFrontKeyValueStoreClient:
        if self._client is None:  # the API signs with SigV4A: botocore needs awscrt for it
            self._client = cast(
                "CloudFrontKeyValueStoreClient", create_client("cloudfront-keyvaluestore")
            )
        return self._client

    def update(self, items: list[tuple[str, str | None]]) -> None:
        """Put each (key, value), delete each (key, None): at most 50 in one call, applied
        together or not at all; sent again while another writer wins the race."""
        for _ in range(ATTEMPTS):
            etag = self.client.describe_key_value_store(KvsARN=self.arn)["ETag"]
            try:
                self.client.update_keys(
                    KvsARN=self.arn,
                    IfMatch=etag,
                    Puts=[{"Key": k, "Value": v} for k, v in items if v is not None],
                    Deletes=[{"Key": k} for k, v in items if v is None],
                )
                return
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConflictException":  # only a lost race
                    raise
        raise RuntimeError(f"gave up updating {self.arn} after {ATTEMPTS} conflicts")

    def keys(self) -> Iterator[str]:
        """Every key in the store, page by page (ListKeys)."""
        token: str | None = None
        while True:
            page = (
                self.client.list_keys(KvsARN=self.arn, NextToken=token)
                if token
                else self.client.list_keys(KvsARN=self.arn)
            )
            for item in page.get("Items", []):
                yield item["Key"]
            token = page.get("NextToken")
            if not token:
                return


class EdgeQuarantine:
    """PEP 792 at the CloudFront edge: a record per quarantined project, which makes the edge
    function refuse the project's files and ``.metadata`` before it looks in its cache."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    @classmethod
    def from_environment(cls) -> EdgeQuarantine | None:
        """The stack's KeyValueStore (``SKYPI_KVS_ARN``); None locally, where the read
        routes look at the page's status themselves."""
        arn = os.environ.get(KVS_VARIABLE)
        return cls(KeyValueStore(arn)) if arn else None

    def hold(self, project: str) -> None:
        """Write ``project``'s record: from now on the edge refuses its files."""
        self._update([(record(project), QUARANTINE_RECORD_VALUE)])
        log.info("the edge now refuses the files of %s", project)

    def release(self, project: str) -> None:
        """Remove ``project``'s record (none there is no error): the edge serves its files."""
        self._update([(record(project), None)])
        log.info("the edge serves the files of %s again", project)

    def held(self) -> set[str]:
        """The projects the edge refuses the files of."""
        try:
            keys = list(self.store.keys())
        except (BotoCoreError, ClientError) as exc:
            raise EdgeWriteFailed(f"cannot list the edge's records: {exc}") from exc
        return {p for k in keys if (p := quarantined_project(k)) is not None}

    def drift(
        self, quarantined: Collection[str], keep: Collection[str] = ()
    ) -> tuple[list[str], list[str]]:
        """(quarantined projects without a record, records of projects not quarantined), the
        records of ``keep`` (projects whose status is unknown) left out."""
        held = self.held()
        return sorted(set(quarantined) - held), sorted(held - set(quarantined) - set(keep))

    def converge(
        self, quarantined: Collection[str], keep: Collection[str] = ()
    ) -> tuple[list[str], list[str]]:
        """Make the records name exactly ``quarantined`` (``keep``'s left as they are): the
        missing ones written, then the others removed; returns :meth:`drift` as it was."""
        missing, extra = self.drift(quarantined, keep)
        items: list[tuple[str, str | None]] = [
            (record(p), QUARANTINE_RECORD_VALUE) for p in missing
        ]
        items += [(record(p), None) for p in extra]
        for start in range(0, len(items), MAX_KEYS_PER_CALL):
            self._update(items[start : start + MAX_KEYS_PER_CALL])
        return missing, extra

    def _update(self, items: list[tuple[str, str | None]]) -> None:
        try:
            self.store.update(items)
        except (BotoCoreError, ClientError, RuntimeError) as exc:
            raise EdgeWriteFailed(f"the edge's KeyValueStore refused the change: {exc}") from exc


def record(project: str) -> str:
    """The key of ``project``'s record, checked against the store's limits (a normalized name
    of at most 255 bytes always fits: ``tests/aws/test_edge_quarantine.py``).

    >>> record("foo")
    'quarantined/foo'
    """
    key = quarantine_record_key(project)
    if len(key.encode()) > EDGE_MAX_KEY_BYTES:
        raise ValueError(f"a record key of {len(key.encode())} bytes: at most {EDGE_MAX_KEY_BYTES}")
    assert len(QUARANTINE_RECORD_VALUE.encode()) <= EDGE_MAX_VALUE_BYTES
    assert key.startswith(QUARANTINE_RECORD_PREFIX)
    return key
