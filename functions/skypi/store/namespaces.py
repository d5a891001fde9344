"""The namespaces of an index (PEP 752): one records object, changed with compare-and-swap, and
the documents the namespace endpoints serve, written from it.

The same on every store: in a folder index's state folder (``.skypi/namespaces/``) and in the
bucket (``namespaces/``), where the admin API writes them and the indexer reads the records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from skypi.core.errors import Busy
from skypi.core.keys import NAMESPACE_RECORDS_KEY, namespace_key
from skypi.core.namespaces import Namespaces
from skypi.store.base import NotFound, PreconditionFailed, Store

log = logging.getLogger("skypi.namespaces")
ATTEMPTS = 20  # compare-and-swap rounds before giving up (admins rarely race)


class NamespaceRepository:
    """Reads and changes one index's namespaces."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def read(self) -> tuple[Namespaces, str | None]:
        """The namespaces and the records' ETag (None: none was ever added). Records that
        cannot be read are a fault of the index, raised as ValueError, never taken as none
        (which would open every namespace)."""
        try:
            info, raw = self.store.get(NAMESPACE_RECORDS_KEY)
        except NotFound:
            return Namespaces(), None
        return Namespaces.from_json_bytes(raw), info.etag

    def all(self) -> Namespaces:
        return self.read()[0]

    def update(self, change: Callable[[Namespaces], Namespaces]) -> tuple[Namespaces, Namespaces]:
        """Apply ``change`` (which raises to refuse) with compare-and-swap, then write the
        served documents; (before, after)."""
        for _ in range(ATTEMPTS):
            before, etag = self.read()
            after = change(before)
            try:
                if etag is None:
                    self.store.put(NAMESPACE_RECORDS_KEY, after.to_json_bytes(), if_none_match=True)
                else:
                    self.store.put(NAMESPACE_RECORDS_KEY, after.to_json_bytes(), if_match=etag)
            except PreconditionFailed:
                continue
            self.publish(after, before)
            return before, after
        raise Busy("The namespaces are being changed by others: try again in a moment.")

    def publish(self, now: Namespaces, before: Namespaces | None = None) -> None:
        """Write what ``/simple/namespaces`` and each ``/simple/namespace/<name>`` serve, and
        delete the documents of namespaces that are gone."""
        self.store.put(namespace_key(None), now.listing())
        for ns in now:
            self.store.put(namespace_key(ns.name), now.detail(ns.name))
        for gone in (before or Namespaces()).by_name.keys() - now.by_name.keys():
            self.store.delete(namespace_key(gone))
            log.info("namespace %s removed", gone)
