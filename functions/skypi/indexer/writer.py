"""The page writer: the one place that writes index pages, safely under concurrency.

- A project's JSON page, the root listing and the landing page are each written with
  compare-and-swap (``If-Match`` / ``If-None-Match: *``) and retried on a lost race, so
  concurrent writers never lose each other's changes (the change is a function, applied again
  to the newer page). A swap answered 412 whose own page is what storage holds was stored (its
  reply was lost, the request sent again): it is taken as written.
- What follows a JSON page (its gzip variant, the two HTML twins with theirs, the project's page
  for people; for the root listing its variant and twins) is written from the render just made,
  without reading it first. Then the page is looked at once more (HEAD): if another writer
  replaced it meanwhile, its followers may have been overtaken by ours, so they are written
  again from the newest page. The last writer of a page always sees its own page still there,
  so the followers end up rendered from the newest page. The gzip variant of the JSON is
  written last (for the root listing, after the landing page's count too): it matching the
  JSON says the rest was written, so a run retried after stopping part-way knows, with one
  read, whether the followers are still to write.
- A page being followed by one thread of this process is not followed again by another (the
  folder watcher looking at an upload's file): :meth:`followed` waits for that write to end,
  then looks.
- Hot objects (the root listing, the landing page) are kept with their ETag after each write:
  the next update tries the swap without reading first, and reads only when it lost. A
  release's description, stored once and never changed, is kept too.
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from packaging.utils import NormalizedName

from skypi.core.errors import Busy, CorruptDocument
from skypi.core.http import gzip_page
from skypi.core.keys import (
    LANDING_KEY,
    LEGACY_SITE_JSON_KEY,
    ROOT_HTML_KEY,
    ROOT_JSON_KEY,
    gzip_key,
    held_files_key,
    html_twins,
    page_html_key,
    page_json_key,
    project_site_key,
    release_key,
)
from skypi.core.landing import SiteSummary, Upload
from skypi.core.pages import ProjectPage, RootEntry, RootListing, held_digest, root_entry
from skypi.core.release import Release
from skypi.core.render import render_project_html, render_root_html
from skypi.core.site import render_landing, render_project_site
from skypi.indexer.bounded import Bounded
from skypi.store.base import NotFound, PreconditionFailed, Store, put_copies

log = logging.getLogger("skypi.pages")
MAX_ATTEMPTS = 100
T = TypeVar("T")
_RELEASES_KEPT = 512
_RELEASE_BYTES_KEPT = 32 * 1024 * 1024  # characters of descriptions
_PAGES_KEPT = 64
_PAGE_BYTES_KEPT = 32 * 1024 * 1024
_FOLLOW_WAIT_SECONDS = 60.0  # a bound on waiting for another thread's followers (then: look)


class Contended(Busy):
    """A page lost its compare-and-swap too many times in a row (answered 503: try again)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"The index is busy ({what}); try again in a moment.")


@dataclass(frozen=True)
class Stored:
    """A page as read from storage, with the ETag it was read at (None: there is none)."""

    page: ProjectPage | None
    etag: str | None
    body: bytes | None = None  # the page's stored bytes (its gzip variant holds exactly them)


@dataclass(frozen=True)
class Written:
    """A page write that happened: the page it replaced and the one now stored."""

    before: ProjectPage | None
    after: ProjectPage
    etag: str


PageChange = Callable[[ProjectPage | None], ProjectPage | None]
Describer = Callable[[ProjectPage, str], Release | None]  # (page, version) -> description
RootChange = Mapping[NormalizedName, RootEntry]
RootFollower = Callable[[RootListing], object]  # told each root listing that is followed


def _pause(attempt: int) -> None:
    """A short, growing, jittered wait after a lost race, so contenders spread out."""
    if attempt:
        time.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))


class PageWriter:
    """Writes one store's pages. Thread-safe; one per process is enough (it keeps ETags)."""

    def __init__(
        self,
        store: Store,
        describer: Describer | None = None,
        index_url: str | None = None,
        created: Callable[[NormalizedName], object] | None = None,
    ) -> None:
        self.store = store
        # Told of each project whose page this writer creates (its views yield the name:
        # skypi.indexer.views.Views.yield_to_private), whatever path created it.
        self.created = created
        self._lock = threading.Lock()
        self._root = _Kept(store, ROOT_JSON_KEY, self._read_root)
        self._landing = _Kept(store, LANDING_KEY, self._read_landing)
        # a description may hold megabytes of HTML: one larger than an eighth of the room is
        # read again when needed
        self._releases = Bounded[tuple[str, str], Release](
            _RELEASES_KEPT, _RELEASE_BYTES_KEPT, _release_size, _RELEASE_BYTES_KEPT // 8
        )
        # the last page read or written, by project: its bytes, and about twice them parsed
        self._pages = Bounded[NormalizedName, Stored](_PAGES_KEPT, _PAGE_BYTES_KEPT, _page_size)
        # projects whose page a thread of this process is writing with what follows it: set
        # when that write ends (:meth:`followed` waits for it rather than write them twice)
        self._following: dict[NormalizedName, tuple[threading.Event, int]] = {}
        # Renders a release's description from one of its files when none is stored (only
        # the newest release is described as files arrive; an older one when it becomes the
        # newest, after a yank or a delete).
        self.describer = describer
        # This index's address, written into the setup lines of the pages for people (None:
        # placeholders that the server or the page's script fills in).
        self.index_url = index_url

    # -- project pages --------------------------------------------------------------------

    def read(self, project: NormalizedName) -> Stored:
        """The page as stored now. Parsed again only when its ETag is not the one this
        process last wrote or read (a page of thousands of files takes tens of ms to parse)."""
        try:
            info, raw = self.store.get(page_json_key(project))
        except NotFound:
            return Stored(None, None)
        kept = self._pages.get(project)
        if kept is not None and kept.etag == info.etag and kept.body == raw:
            return kept
        page = ProjectPage.from_json_bytes(
            raw, lambda digest: self.store.get(held_files_key(project, digest))[1]
        )
        return self._keep_page(Stored(page, info.etag, raw))

    def _keep_page(self, stored: Stored) -> Stored:
        if stored.page is not None:
            self._pages.put(stored.page.name, stored)
        return stored

    def update(
        self,
        project: NormalizedName,
        change: PageChange,
        *,
        start: Stored | None = None,
        releases: Mapping[str, Release] | None = None,
        repair: bool = False,
    ) -> Written | None:
        """Swap ``project``'s page for ``change(page)`` (None, or the same page: nothing to
        write), then write what follows it. ``start``: the page as the caller already read it;
        ``releases``: descriptions just rendered, by version; ``repair``: when there is
        nothing to write, write what follows the page unless it was (an edit sent again after
        its followers failed, which no storage event repairs)."""
        state = start if start is not None else self.read(project)
        for attempt in range(MAX_ATTEMPTS):
            _pause(attempt)
            new = change(state.page)
            if new is None or new == state.page:
                if repair:
                    self.catch_up(state, releases)
                return None
            with self._writing(project):
                written = self._swap(project, state, new, releases or {})
            if isinstance(written, Written):
                if written.before is None and self.created is not None:
                    self.created(project)
                return written
            state = written
        raise Contended(f"gave up updating {project} after {MAX_ATTEMPTS} lost races")

    def _swap(
        self,
        project: NormalizedName,
        state: Stored,
        new: ProjectPage,
        releases: Mapping[str, Release],
    ) -> Written | Stored:
        """One try of :meth:`update`: the page swapped in and followed, or the page as
        stored now after a lost race."""
        body = new.to_json_bytes()
        if (held := new.held_files()) is not None:  # before the page that names them
            self.store.put(held_files_key(project, held_digest(held)), held)
        try:
            etag = self.store.put(
                page_json_key(project),
                body,
                if_match=state.etag,
                if_none_match=state.etag is None,
            ).etag
        except PreconditionFailed:
            before, state = state, self.read(project)
            if state.body != body or state.etag is None:
                return state
            # What is stored now is what this try wrote: stored, but its reply was lost
            # and the request sent again (412). Another try would find nothing left to
            # change, and no one else writes what follows the page (no storage event
            # follows an admin edit; a delete's finds its file unlisted already).
            etag, state = state.etag, before
        self._keep_page(Stored(new, etag, body))
        self.follow(new, etag, releases, body)
        return Written(state.page, new, etag)

    @contextmanager
    def _writing(self, project: NormalizedName) -> Iterator[None]:
        """Mark ``project``'s page as being written and followed by this thread (the first
        such thread marks it; the mark goes, and its waiters wake, when that one ends)."""
        with self._lock:
            mine = project not in self._following
            if mine:
                self._following[project] = (threading.Event(), threading.get_ident())
        try:
            yield
        finally:
            if mine:
                with self._lock:
                    done, _ = self._following.pop(project)
                done.set()

    def follow(
        self,
        page: ProjectPage,
        etag: str,
        releases: Mapping[str, Release] | None = None,
        body: bytes | None = None,
    ) -> ProjectPage:
        """Write what follows ``page`` (stored at ``etag``), until the page stays the one they
        were rendered from; returns the page they follow."""
        key = page_json_key(page.name)
        with self._writing(page.name):
            for _ in range(MAX_ATTEMPTS):
                self._write_followers(page, body or page.to_json_bytes(), releases or {})
                now = self.store.head(key)
                if now is None or now.etag == etag:
                    return page
                state = self.read(page.name)  # replaced meanwhile: follow the newer page
                if state.page is None or state.etag is None:
                    return page
                page, etag, body = state.page, state.etag, state.body
        raise Contended(f"gave up following {key} after {MAX_ATTEMPTS} rewrites")

    def stale_followers(self, page: ProjectPage, body: bytes) -> list[tuple[str, str]]:
        """(key, problem) for each follower of a stored page (its bytes: ``body``) that is
        missing, behind or altered: what a repair writes again."""
        found = self._stale(
            page_json_key(page.name), body, page_html_key(page.name), render_project_html(page)
        )
        if page.files and self.store.head(project_site_key(page.name)) is None:
            found.append((project_site_key(page.name), "is missing"))
        return found

    def stale_root_followers(self, root: RootListing, body: bytes) -> list[tuple[str, str]]:
        return self._stale(ROOT_JSON_KEY, body, ROOT_HTML_KEY, render_root_html(root))

    def _stale(
        self, json_key: str, body: bytes, html_key: str, html: bytes
    ) -> list[tuple[str, str]]:
        found = []
        for key in html_twins(html_key):
            if self.stored(key) != html:
                found.append((key, "does not match the JSON page"))
        for key, plain in ((json_key, body), *((k, html) for k in html_twins(html_key))):
            try:
                same = gzip.decompress(self.stored(gzip_key(key))) == plain
            except (OSError, EOFError, zlib.error):
                same = False
            if not same:
                found.append((gzip_key(key), f"does not match {key}"))
        return found

    def stored(self, key: str) -> bytes:
        """The bytes stored under ``key`` (none: empty)."""
        try:
            return self.store.get(key)[1]
        except NotFound:
            return b""

    def catch_up(self, state: Stored, releases: Mapping[str, Release] | None = None) -> bool:
        """Write what follows a stored page unless it was (:meth:`followed`): a run that
        stopped after the page's swap leaves that to whoever sees its change again (an event
        redelivered, an edit or an upload sent again). True if it was written now. ``state``
        may be behind storage: a page replaced since is followed by its own writer, so this
        follows the page as stored now, never the older one (whose followers would stand in
        for the newer page's until the look after them)."""
        if state.page is None or state.etag is None or self.followed(state):
            return False
        page, etag, body = state.page, state.etag, state.body
        now = self.store.head(page_json_key(page.name))
        if now is not None and now.etag != etag:
            newer = self.read(page.name)
            if newer.page is None or newer.etag is None or self.followed(newer):
                return False
            page, etag, body = newer.page, newer.etag, newer.body
        log.info("writing what follows the page of %s again", page.name)
        self.follow(page, etag, releases, body)
        return True

    def followed(self, state: Stored) -> bool:
        """Whether what follows a stored page was all written from it, or is another
        thread's of this process to write: the page's gzip variant is written last, so it
        matching the page means the others were written before it (one read, where a write
        stopped part-way leaves it behind). A thread of this process writing them now is
        waited for; if it wrote a newer page meanwhile, what follows is that page's."""
        if state.page is None or state.body is None:
            return True
        name = state.page.name
        with self._lock:
            busy, writer = self._following.get(name, (None, 0))
        waited = busy is not None and writer != threading.get_ident()
        if busy is not None and waited:
            busy.wait(_FOLLOW_WAIT_SECONDS)
        try:
            stored = self.stored(gzip_key(page_json_key(name)))
            if gzip.decompress(stored) == state.body:
                return True
        except (OSError, EOFError, zlib.error):
            pass
        kept = self._pages.get(name)
        return waited and kept is not None and kept.etag != state.etag

    def _write_followers(
        self, page: ProjectPage, body: bytes, releases: Mapping[str, Release]
    ) -> None:
        """The HTML twins, the page for people, and last the page's gzip variant (the mark
        that they are all written: :meth:`followed`)."""
        self._write_html(page_html_key(page.name), render_project_html(page))
        newest = page.latest_version
        release = releases.get(newest) if newest else None
        if release is None and newest is not None:
            release = self.release(page.name, newest)
            if release is None and self.describer is not None:
                described = self.describer(page, newest)
                release = self.add_release(page.name, described) if described else None
        people = render_project_site(page, release, self.index_url)
        self.store.put(project_site_key(page.name), people)
        self.store.put(gzip_key(page_json_key(page.name)), gzip_page(body))

    def _write_html(self, html_key: str, html: bytes) -> None:
        """The two HTML twins (the same bytes under two keys), then their gzip variants: each
        pair in one write where the store can (:func:`~skypi.store.base.put_copies`)."""
        twins = html_twins(html_key)
        put_copies(self.store, twins, html)
        put_copies(self.store, [gzip_key(key) for key in twins], gzip_page(html))

    # -- releases (descriptions, rendered once) ----------------------------------------------

    def release(self, project: NormalizedName, version: str) -> Release | None:
        cache_key = (project, version)
        kept = self._releases.get(cache_key)
        if kept is not None:
            return kept
        try:
            found: Release | None = Release.from_json_bytes(
                self.store.get(release_key(project, version))[1]
            )
        except NotFound:
            found = None
        if found is not None:
            self._releases.put(cache_key, found)
        return found

    def add_release(self, project: NormalizedName, release: Release) -> Release:
        """Store a release's description unless one is stored (the first stands); returns the
        one that stands."""
        try:
            self.store.put(
                release_key(project, release.version), release.to_json_bytes(), if_none_match=True
            )
            stored: Release | None = release
        except PreconditionFailed:
            stored = self.release(project, release.version)
        self._releases.put((project, release.version), stored or release)
        return stored or release

    # -- the root listing -----------------------------------------------------------------

    def _read_root(self) -> tuple[RootListing, str | None]:
        try:
            info, raw = self.store.get(ROOT_JSON_KEY)
        except NotFound:
            return RootListing(), None
        return RootListing.from_json_bytes(raw), info.etag

    def read_root(self) -> tuple[RootListing, str | None]:
        return self._root.read()

    def update_root(
        self,
        shown: RootChange,
        *,
        force: bool = False,
        seen: Mapping[NormalizedName, str] | None = None,
        then: RootFollower | None = None,
    ) -> RootListing | None:
        """Apply many projects' appearance, removal or new summary in one swap; None when the
        listing already says all that (``force``: write it and its followers anyway, which
        repairs them). ``then``: what else follows the listing (the landing page's count),
        done before the listing's gzip variant, the mark that all of it is written.

        ``shown`` says what each project's page said when it was written at the ETag in
        ``seen`` (no ETag: not known). With ``seen``, each try of the swap looks again (HEAD)
        at every such page, after the listing's ETag was taken: a page replaced meanwhile is
        read and shown as it is now, so two writers whose root updates cross never leave the
        listing showing the older page (the last file deleted by one, a file uploaded by the
        other). Without ``seen``, ``shown`` is taken as it is."""

        def change(root: RootListing) -> RootListing:
            return root.with_projects(shown if seen is None else self._confirm(shown, seen))

        swapped = self._root.swap(change, _root_body, force=force)
        return self._follow_root(*swapped, then) if swapped is not None else None

    def root_shows(self, shown: RootChange) -> bool:
        """Whether the root listing this process last read or wrote shows ``shown`` already
        and is still the one stored (one HEAD); False when none is kept (not known)."""
        kept = self._root.kept()
        if kept is None or kept[0].with_projects(shown) is not kept[0]:
            return False
        now = self.store.head(ROOT_JSON_KEY)
        return now is not None and now.etag == kept[1]

    def settle_root(self, then: RootFollower | None = None) -> RootListing | None:
        """Finish what follows the root listing (``then`` too) unless it was: a run that
        swapped the listing may have stopped before its followers (killed, a storage fault),
        and its retry finds the listing saying all it had to say. The listing's gzip variant,
        written last, is the mark (one read, and a look whether the listing this process last
        read or wrote is still the one stored: followers of an older listing are never written
        over a newer one's).
        Returns the listing when its followers were written again."""
        kept = self._root.kept()
        now = self.store.head(ROOT_JSON_KEY) if kept is not None else None
        if kept is None or now is None or now.etag != kept[1]:  # replaced since: as it is now
            root, etag = self._root.read()
        else:
            root, etag = kept
        if etag is None or self.root_followed(root):
            return None
        log.info("writing what follows the root listing again")
        return self._follow_root(root, etag, then)

    def root_followed(self, root: RootListing) -> bool:
        """Whether the root listing's gzip variant, written last of what follows it, holds
        ``root`` (read, not compared byte for byte: a listing an older version stored reads
        the same, and its variant with it)."""
        try:
            stored = gzip.decompress(self.stored(gzip_key(ROOT_JSON_KEY)))
            return RootListing.from_json_bytes(stored) == root
        except (OSError, EOFError, zlib.error, CorruptDocument):
            return False

    def _confirm(
        self, shown: RootChange, seen: Mapping[NormalizedName, str]
    ) -> dict[NormalizedName, RootEntry]:
        """``shown``, with each project whose page is no longer the one seen shown as its
        page is now."""
        confirmed = dict(shown)
        for project in shown:
            # A look taken before the listing's ETag would not do: a writer that changed the
            # page since may have found the listing already right and left it alone.
            info = self.store.head(page_json_key(project))
            if info is not None and info.etag == seen.get(project):
                continue
            try:
                page = self.read(project).page
            except CorruptDocument:  # unreadable: a rebuild's to replace
                continue
            confirmed[project] = root_entry(page)
        return confirmed

    def _follow_root(
        self, root: RootListing, etag: str, then: RootFollower | None = None
    ) -> RootListing:
        """The HTML twins, ``then``, and last the listing's gzip variant (the mark:
        :meth:`root_followed`), until the listing stays the one they were written from."""
        for _ in range(MAX_ATTEMPTS):
            self._write_html(ROOT_HTML_KEY, render_root_html(root))
            if then is not None:
                then(root)
            self.store.put(gzip_key(ROOT_JSON_KEY), gzip_page(root.to_json_bytes()))
            now = self.store.head(ROOT_JSON_KEY)
            if now is None or now.etag == etag:
                return root
            root, new_etag = self._root.read()
            if new_etag is None:
                return root
            etag = new_etag
        raise Contended(f"gave up following {ROOT_JSON_KEY} after {MAX_ATTEMPTS} rewrites")

    # -- the landing page ---------------------------------------------------------------------

    def _read_landing(self) -> tuple[SiteSummary, str | None]:
        """The landing page's manifest and ETag; from an older version's manifest file when the
        page carries none."""
        try:
            info, html = self.store.get(LANDING_KEY)
            etag: str | None = info.etag
        except NotFound:
            html, etag = b"", None
        summary = self.manifest(html)
        if summary is None:
            # none at all (a page broken by hand): the count is the root listing's, never
            # "0 projects"
            root, _ = self.read_root()
            summary = SiteSummary().with_listing(len(root.projects), root.serial)
        return summary, etag

    def manifest(self, landing: bytes) -> SiteSummary | None:
        """The landing page's manifest: carried in the page (``landing``, its bytes), or in
        the file an older version kept beside it; None if neither can be read."""
        summary = SiteSummary.from_landing(landing)
        if summary is not None:
            return summary
        try:
            return SiteSummary.from_json_bytes(self.store.get(LEGACY_SITE_JSON_KEY)[1])
        except (NotFound, CorruptDocument):
            return None

    def read_landing(self) -> tuple[SiteSummary, str | None]:
        return self._landing.read()

    def update_landing(
        self,
        uploads: list[Upload] | None = None,
        listing: RootListing | None = None,
        *,
        force: bool = False,
        gone: Sequence[tuple[NormalizedName, str]] = (),
    ) -> SiteSummary | None:
        """Add ``uploads``, drop the files ``gone`` (project, filename), and take the project
        count of ``listing``, in one swap of the landing page (``force``: write it even when
        it already says all that)."""

        def change(summary: SiteSummary) -> SiteSummary:
            new = summary.without(gone).with_uploads(uploads or [])
            if listing is not None:
                new = new.with_listing(len(listing.projects), listing.serial)
            return new

        def render(summary: SiteSummary) -> bytes:
            return render_landing(summary, self.index_url)

        swapped = self._landing.swap(change, render, force=force)
        return swapped[0] if swapped is not None else None


def _release_size(release: Release) -> int:
    return len(release.description_html) + len(release.summary) + len(release.version)


def _page_size(stored: Stored) -> int:
    return len(stored.body or b"")


def _root_body(root: RootListing) -> bytes:
    return root.to_json_bytes()


class _Kept(Generic[T]):
    """A hot object, kept with the ETag this process last wrote or read: a swap is tried
    without reading first, and the object is read again only after a lost race (412), or to
    check a kept copy before "nothing to change" is believed."""

    def __init__(self, store: Store, key: str, read: Callable[[], tuple[T, str | None]]) -> None:
        self.store, self.key, self._read = store, key, read
        self._lock = threading.Lock()
        self._kept: tuple[T, str] | None = None

    def kept(self) -> tuple[T, str] | None:
        """The value and ETag this process last wrote or read, if any."""
        with self._lock:
            return self._kept

    def read(self) -> tuple[T, str | None]:
        value, etag = self._read()
        with self._lock:
            self._kept = (value, etag) if etag is not None else None
        return value, etag

    def swap(
        self, change: Callable[[T], T], body: Callable[[T], bytes], *, force: bool = False
    ) -> tuple[T, str] | None:
        """Store ``change(current)``; (stored value, its ETag), or None when ``change``
        changes nothing (and ``force`` is off)."""
        with self._lock:
            kept = self._kept
        value, etag = kept if kept is not None else self.read()
        fresh, lost = kept is None, False
        for attempt in range(MAX_ATTEMPTS):
            _pause(attempt)
            new = change(value)
            if new is value and etag is not None and not force:
                if lost:  # this very write is stored: its reply was lost (sent again: 412)
                    return value, etag  # so what follows it is still this writer's to write
                if fresh:
                    return None
                info = self.store.head(self.key)  # a kept copy may be stale: look first
                if info is not None and info.etag == etag:
                    return None
                (value, etag), fresh = self.read(), True
                continue
            try:
                info = self.store.put(
                    self.key, body(new), if_match=etag, if_none_match=etag is None
                )
            except PreconditionFailed:
                (value, etag), fresh = self.read(), True
                lost = value == new  # what is stored now is what this try wrote
                continue
            with self._lock:
                self._kept = (new, info.etag)
            return new, info.etag
        raise Contended(f"gave up updating {self.key} after {MAX_ATTEMPTS} lost races")


__all__ = [
    "Contended",
    "PageChange",
    "PageWriter",
    "RootChange",
    "RootFollower",
    "Stored",
    "Written",
]
