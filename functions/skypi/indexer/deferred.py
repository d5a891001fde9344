"""The root listing written less often: pending records, and one rebuild per window.

At 100,000 projects the root listing (``/simple/``: its JSON, two HTML twins and their gzip
variants) is about 19 MB, rewritten whole whenever a project appears, leaves or changes its
summary. Where a rebuild can be asked for later (on AWS: a delayed message on the indexer's
own queue), a batch instead

1. records each such project under ``pending/root/<project>.json`` (a few hundred bytes: how
   its page shows it, and that page's ETag), then
2. creates the "rebuild due" object, create-only (``If-None-Match: *``): the one writer whose
   create succeeds asks for the rebuild, ``delay`` seconds later; the others find it there,
   and their records wait for that rebuild. A burst of N new projects costs one rebuild.

The rebuild (:meth:`DeferredRoot.rebuild`) deletes the "rebuild due" object first, then lists
the records, merges them into the listing by compare-and-swap (each page looked at again, as
:meth:`~skypi.indexer.writer.PageWriter.update_root` does), writes what follows the listing,
and only then deletes each record it merged, if it is still the one it read (``If-Match``).
So a crash anywhere loses nothing: a record goes only once a listing that shows it is stored
with its followers; a record written after the rebuild took its list finds the "rebuild due"
object gone and asks for a rebuild of its own; a rebuild that fails is retried by its queue.
A "rebuild due" object left by a writer that stopped before asking (killed between the two
steps) is taken over once it is older than the delay plus :data:`OVERDUE_GRACE_SECONDS`: a
second rebuild costs one more listing, never a lost project.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from packaging.utils import NormalizedName

from skypi.core.constants import MAX_ROOT_DELAY_SECONDS
from skypi.core.errors import CorruptDocument
from skypi.core.keys import ROOT_DUE_KEY, ROOT_PENDING_PREFIX, recognise, root_pending_key
from skypi.core.pages import PendingEntry, RootEntry, RootListing
from skypi.indexer.writer import PageWriter, RootChange, RootFollower
from skypi.store.base import NotFound, ObjectInfo, PreconditionFailed, Store

log = logging.getLogger("skypi.indexer")
# A "rebuild due" object older than the delay and this has lost its request (its writer
# stopped before asking): the next writer that finds it asks again.
OVERDUE_GRACE_SECONDS = 300
_DUE_TRIES = 3  # creating the object again after a rebuild deleted it under us


class RootRebuilds(Protocol):
    """Where a rebuild of the root listing is asked for, to run ``delay`` seconds later."""

    def request(self, delay: int) -> None: ...


class DeferredRoot:
    """Records root changes as pending and merges them in one rebuild per window."""

    def __init__(self, pages: PageWriter, rebuilds: RootRebuilds, delay: int) -> None:
        self.pages = pages
        self.store = pages.store
        self.rebuilds = rebuilds
        self.delay = delay

    def defer(self, shown: RootChange, seen: Mapping[NormalizedName, str] | None = None) -> None:
        """Record each project's change (``seen``: the ETag of the page it was taken from),
        then make sure a rebuild is due."""
        for project, entry in sorted(shown.items()):
            record = PendingEntry(entry, (seen or {}).get(project))
            self.store.put(root_pending_key(project), record.to_json_bytes())
        self._due()

    def _due(self) -> None:
        """Create the "rebuild due" object; the writer that created it asks for the rebuild."""
        for _ in range(_DUE_TRIES):
            try:
                created = self.store.put(ROOT_DUE_KEY, _stamp(), if_none_match=True)
            except PreconditionFailed:
                info = self.store.head(ROOT_DUE_KEY)
                if info is None:  # a rebuild took it just now: this record may be after its list
                    continue
                if not self._overdue(info):
                    return  # that rebuild will list this record
                try:  # left by a writer that stopped before asking: asked again, once
                    created = self.store.put(ROOT_DUE_KEY, _stamp(), if_match=info.etag)
                except PreconditionFailed:
                    return  # another writer took it over (or a rebuild deleted it: see above)
                log.warning("the root listing's rebuild was due since %s; asked again", info.key)
            self._request(created.etag)
            return
        self.rebuilds.request(self.delay)  # created and deleted under us each time: ask anyway

    def _request(self, due: str) -> None:
        """Ask for the rebuild; if asking fails, the "rebuild due" object this writer made
        goes again, so that the next writer (this batch retried) asks instead of waiting."""
        try:
            self.rebuilds.request(self.delay)
        except Exception:
            with contextlib.suppress(Exception):
                self.store.delete(ROOT_DUE_KEY, if_match=due)
            raise

    def _overdue(self, info: ObjectInfo) -> bool:
        limit = timedelta(seconds=self.delay + OVERDUE_GRACE_SECONDS)
        return datetime.now(UTC) - info.last_modified > limit

    def pending(self) -> dict[NormalizedName, tuple[ObjectInfo, PendingEntry | None]]:
        """Every pending record: its object, and what it says (None: unreadable)."""
        found: dict[NormalizedName, tuple[ObjectInfo, PendingEntry | None]] = {}
        for info in self.store.list(ROOT_PENDING_PREFIX):
            known = recognise(info.key)
            if known is None or known.project is None:
                continue
            try:
                got, raw = self.store.get(info.key)
                record: PendingEntry | None = PendingEntry.from_json_bytes(raw)
            except NotFound:
                continue
            except CorruptDocument:
                got, record = info, None
            found[NormalizedName(known.project)] = (got, record)
        return found

    def rebuild(self, then: RootFollower | None = None) -> RootListing | None:
        """Merge every pending record into the root listing (see the module); the listing
        written, or None when there was nothing to merge or it showed all of it already."""
        with contextlib.suppress(NotFound):
            self.store.delete(ROOT_DUE_KEY)
        records = self.pending()
        if not records:
            return None
        # an unreadable record still names its project: its page is read as it is now
        shown = {p: r.entry if r else RootEntry(None) for p, (_, r) in records.items()}
        seen = {p: r.seen for p, (_, r) in records.items() if r is not None and r.seen}
        listing = self.pages.update_root(shown, seen=seen, then=then)
        if listing is None:  # showed it all already: perhaps a rebuild stopped before its followers
            listing = self.pages.settle_root(then=then)
        for info, _ in records.values():
            with contextlib.suppress(PreconditionFailed, NotFound):  # written again since: kept
                self.store.delete(info.key, if_match=info.etag)
        log.info("merged %d pending projects into the root listing", len(records))
        return listing


def waiting(store: Store, now: datetime | None = None) -> set[NormalizedName]:
    """The projects whose pending record is younger than the longest delay a rebuild may be
    asked for plus :data:`OVERDUE_GRACE_SECONDS`: the root listing may not show them yet
    without anything being wrong (``skypi reindex --check`` does not report them)."""
    limit = timedelta(seconds=MAX_ROOT_DELAY_SECONDS + OVERDUE_GRACE_SECONDS)
    now = now or datetime.now(UTC)
    found = set()
    for info in store.list(ROOT_PENDING_PREFIX):
        known = recognise(info.key)
        if known is not None and known.project and now - info.last_modified <= limit:
            found.add(NormalizedName(known.project))
    return found


def _stamp() -> bytes:
    return datetime.now(UTC).isoformat().encode()


__all__ = ["OVERDUE_GRACE_SECONDS", "DeferredRoot", "RootRebuilds", "waiting"]
