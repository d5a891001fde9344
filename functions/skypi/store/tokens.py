"""Token records kept in the object store (``auth/tokens.json``), updated with compare-and-swap.

Locally that is ``<folder>/.skypi/auth/tokens.json``. Reads are cached by ETag, so checking a
token costs one ``head`` when nothing changed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from skypi.core.keys import TOKENS_KEY
from skypi.core.tokens import TokenRecord
from skypi.store.base import NotFound, PreconditionFailed, Store

MINTED_KEPT = timedelta(days=90)  # how long a trusted publisher's expired token stays listed


class TokenStore(Protocol):
    """Where token records live: the object store locally, a DynamoDB table on AWS."""

    def find(self, key: str) -> TokenRecord | None:
        """The record stored under ``key`` (a token's SHA-256, or an htpasswd user's key)."""
        ...

    def all(self) -> list[TokenRecord]: ...

    def add(self, record: TokenRecord, *, overwrite: bool = False) -> None: ...

    def revoke(self, token_id: str) -> TokenRecord: ...


class TokenRepository:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: tuple[str, dict[str, TokenRecord]] | None = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[str | None, dict[str, TokenRecord]]:
        try:
            info, raw = self.store.get(TOKENS_KEY)
        except NotFound:
            return None, {}
        records = [TokenRecord.from_json(r) for r in json.loads(raw)["tokens"]]
        return info.etag, {r.hash: r for r in records}

    def all(self) -> list[TokenRecord]:
        _, records = self._load()
        return sorted(records.values(), key=lambda r: r.created)

    def find(self, key: str) -> TokenRecord | None:
        info = self.store.head(TOKENS_KEY)
        if info is None:
            return None
        with self._lock:
            if self._cache is None or self._cache[0] != info.etag:
                etag, records = self._load()
                self._cache = (etag or "", records)
            records = self._cache[1]
        return records.get(key)

    def _update(self, change: Callable[[dict[str, TokenRecord]], None]) -> None:
        for _ in range(100):
            etag, records = self._load()
            change(records)
            body = json.dumps(
                {"tokens": [r.to_json() for r in records.values()]}, indent=1
            ).encode()
            try:
                if etag is None:
                    self.store.put(TOKENS_KEY, body, if_none_match=True)
                else:
                    self.store.put(TOKENS_KEY, body, if_match=etag)
                return
            except PreconditionFailed:
                continue
        raise RuntimeError("gave up updating tokens after 100 conflicts")

    def add(self, record: TokenRecord, *, overwrite: bool = False) -> None:
        def change(records: dict[str, TokenRecord]) -> None:
            if record.hash in records and not overwrite:
                raise KeyError(f"a record with id {record.id} exists already")
            records[record.hash] = record
            old = datetime.now(UTC) - MINTED_KEPT
            for digest, kept in list(records.items()):
                if kept.publisher and kept.expires and kept.expires < old:
                    del records[digest]

        self._update(change)

    def revoke(self, token_id: str) -> TokenRecord:
        """Remove the token whose id (or unique id prefix) is ``token_id``."""
        found: list[TokenRecord] = []

        def change(records: dict[str, TokenRecord]) -> None:
            found.clear()
            found.extend(r for r in records.values() if r.id.startswith(token_id))
            if len(found) == 1:
                del records[found[0].hash]

        if not token_id:
            raise KeyError("give a token id (see 'skypi token list')")
        self._update(change)
        if len(found) != 1:
            raise KeyError(
                f"no token with id {token_id!r}"
                if not found
                else f"{token_id!r} matches {len(found)} tokens; give more of the id"
            )
        return found[0]
