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
from typing import Any

from skypi.core.tokens import EDGE_MAX_KEY_BYTES, EDGE_MAX_VALUE_BYTES
from skypi.store.kvs import MAX_KEYS_PER_CALL, KeyValueStore

log = logging.getLogger("skypi.edge_tokens")


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


class KeyValueStoreWriter(KeyValueStore):
    """Applies the token changes to the edge's KeyValueStore (skypi.store.kvs)."""

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
            self.update(items[start : start + MAX_KEYS_PER_CALL])
