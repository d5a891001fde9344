"""Trusted publishers and the OIDC tokens already exchanged, kept beside the token records.

Locally: ``auth/publishers.json`` and ``auth/used-oidc-tokens.json`` in the object store
(``<folder>/.skypi/auth/``), updated with compare-and-swap; on AWS a DynamoDB table
(:mod:`skypi.store.dynamo_publishers`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from skypi.core.keys import PUBLISHERS_KEY, USED_OIDC_KEY
from skypi.core.publishers import Publisher, publisher_from_json
from skypi.store.base import NotFound, PreconditionFailed, Store


class PublisherStore(Protocol):
    def all(self) -> list[Publisher]: ...

    def add(self, publisher: Publisher) -> None:
        """Register ``publisher``; KeyError when the same one is registered already."""
        ...

    def remove(self, publisher_id: str) -> Publisher:
        """Remove the publisher whose id (or unique id prefix) is ``publisher_id``."""
        ...

    def use_once(self, key: str, until: datetime) -> bool:
        """Record that the OIDC token ``key`` was exchanged, kept at least until ``until``
        (:func:`skypi.core.publishers.remembered_until`: its ``exp`` plus the verification's
        leeway, so a replay is refused for as long as the token verifies); False when it had
        been before (a replay)."""
        ...


def _update_json(store: Store, key: str, change: Callable[[dict[str, Any]], None]) -> None:
    for _ in range(100):
        try:
            info, raw = store.get(key)
            etag: str | None = info.etag
            doc = json.loads(raw)
        except NotFound:
            etag, doc = None, {}
        change(doc)
        body = json.dumps(doc, indent=1).encode()
        try:
            if etag is None:
                store.put(key, body, if_none_match=True)
            else:
                store.put(key, body, if_match=etag)
            return
        except PreconditionFailed:
            continue
    raise RuntimeError(f"gave up updating {key} after 100 conflicts")


def pick(publishers: list[Publisher], publisher_id: str) -> Publisher:
    """The one publisher ``publisher_id`` (an id or a unique prefix of one) names."""
    if not publisher_id:
        raise KeyError("give a publisher id (see 'skypi publisher list')")
    found = [p for p in publishers if p.id.startswith(publisher_id)]
    if len(found) != 1:
        raise KeyError(
            f"no publisher with id {publisher_id!r}"
            if not found
            else f"{publisher_id!r} matches {len(found)} publishers; give more of the id"
        )
    return found[0]


class PublisherRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    def all(self) -> list[Publisher]:
        try:
            _, raw = self.store.get(PUBLISHERS_KEY)
        except NotFound:
            return []
        records = [publisher_from_json(p) for p in json.loads(raw).get("publishers", [])]
        return sorted(records, key=lambda p: p.created)

    def add(self, publisher: Publisher) -> None:
        def change(doc: dict[str, Any]) -> None:
            records = doc.setdefault("publishers", [])
            if any(r["id"] == publisher.id for r in records):
                raise KeyError(f"this publisher is registered already (id {publisher.id})")
            records.append(publisher.to_json())

        _update_json(self.store, PUBLISHERS_KEY, change)

    def remove(self, publisher_id: str) -> Publisher:
        found = pick(self.all(), publisher_id)

        def change(doc: dict[str, Any]) -> None:
            doc["publishers"] = [r for r in doc.get("publishers", []) if r["id"] != found.id]

        _update_json(self.store, PUBLISHERS_KEY, change)
        return found

    def use_once(self, key: str, until: datetime) -> bool:
        fresh = [True]

        def change(doc: dict[str, Any]) -> None:
            now = datetime.now(UTC).timestamp()
            used = {k: v for k, v in doc.get("used", {}).items() if v > now}  # expired: drop
            fresh[0] = key not in used
            used.setdefault(key, until.timestamp())
            doc["used"] = used

        _update_json(self.store, USED_OIDC_KEY, change)
        return fresh[0]
