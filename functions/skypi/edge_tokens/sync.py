"""From the token table's stream to the KeyValueStore the edge function reads.

Only what the edge needs goes there: the token's SHA-256 as key, and its ``edge`` value (top
scope, projects, expiry). A change to anything else (the last-use time) writes nothing.

A value over the store's 1 KB limit (a token made before ``skypi token create`` refused
them) would make UpdateKeys fail the whole batch on every retry and hold up the stream; it
is logged and removed from the store instead, so that token is denied at the edge.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from skypi.core.tokens import EDGE_MAX_KEY_BYTES, EDGE_MAX_VALUE_BYTES
from skypi.store.aws import create_client

if TYPE_CHECKING:
    from mypy_boto3_cloudfront_keyvaluestore import CloudFrontKeyValueStoreClient

log = logging.getLogger("skypi.edge_tokens")
MAX_KEYS_PER_CALL = 50  # UpdateKeys takes at most 50 puts and deletes together
ATTEMPTS = 8


def changes(records: Iterable[dict[str, Any]]) -> tuple[dict[str, str], set[str]]:
    """(puts: hash -> edge value, deletes) that stream ``records`` call for; the last wins.

    >>> insert = {"eventName": "INSERT", "dynamodb": {"Keys": {"hash": {"S": "h"}},
    ...           "NewImage": {"edge": {"S": "{}"}}}}
    >>> changes([insert])
    ({'h': '{}'}, set())
    >>> changes([insert, {"eventName": "REMOVE", "dynamodb": {"Keys": {"hash": {"S": "h"}}}}])
    ({}, {'h'})
    """
    puts: dict[str, str] = {}
    deletes: set[str] = set()
    for record in records:
        image = record["dynamodb"]
        key = image["Keys"]["hash"]["S"]
        if record["eventName"] == "REMOVE":
            deletes.add(key)
            puts.pop(key, None)
            continue
        new = image.get("NewImage", {}).get("edge", {}).get("S")
        old = image.get("OldImage", {}).get("edge", {}).get("S")
        if new is None or (record["eventName"] == "MODIFY" and new == old):
            continue
        puts[key] = new
        deletes.discard(key)
    return puts, deletes


class KeyValueStoreWriter:
    """Applies puts and deletes to one KeyValueStore, with its optimistic ETag protocol."""

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

    def apply(self, puts: dict[str, str], deletes: set[str]) -> None:
        too_large = {
            k
            for k, v in puts.items()
            if len(v.encode()) > EDGE_MAX_VALUE_BYTES or len(k.encode()) > EDGE_MAX_KEY_BYTES
        }
        for key in too_large:
            log.error(
                "token %s… has an edge record of %d bytes, over KeyValueStore's %d: it is "
                "denied at the edge; replace it with tokens limited to fewer projects",
                key[:12],
                len(puts[key].encode()),
                EDGE_MAX_VALUE_BYTES,
            )
        puts = {k: v for k, v in puts.items() if k not in too_large}
        deletes = deletes | {k for k in too_large if len(k.encode()) <= EDGE_MAX_KEY_BYTES}
        items: list[tuple[str, str | None]] = [*puts.items(), *((k, None) for k in deletes)]
        for start in range(0, len(items), MAX_KEYS_PER_CALL):
            self._update(items[start : start + MAX_KEYS_PER_CALL])

    def _update(self, items: list[tuple[str, str | None]]) -> None:
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
