"""Admin actions on namespaces (PEP 752): add, grant, revoke, remove; whoever asks (the admin
API, ``skypi namespace`` on a folder). Who may act is not decided here.

Adding a namespace records the projects it covers that are listed already: they predate it,
keep taking uploads as before, and their pages say ``"owned": false``. Adding or removing one
rewrites the pages of the projects it covers, so their ``namespaces`` key says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from packaging.utils import NormalizedName

from skypi.core.namespaces import Namespace, Namespaces, covers
from skypi.core.pages import ProjectPage
from skypi.indexer.service import Indexer

log = logging.getLogger("skypi.namespaces")


class NamespaceAdmin:
    """One index's namespaces, changed through its indexer's store and pages."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer
        self.repo = indexer.namespaces

    def list(self) -> Namespaces:
        return self.repo.all()

    def add(
        self, name: str, *, owner: str, grants: Iterable[str] = (), open: bool = False
    ) -> Namespace:
        listed = list(self.indexer.pages.read_root()[0].projects)
        namespace = Namespace.create(name, owner=owner, grants=grants, open=open, predating=listed)
        _, after = self.repo.update(lambda now: now.add(namespace))
        self._refresh(after, namespace.name, listed)
        self.indexer.views.yield_to_namespace(namespace.name)  # reserved: no view shows them
        log.info("namespace %s added for %s", namespace.name, namespace.owner)
        return namespace

    def grant(self, name: str, principal: str) -> Namespace:
        _, after = self.repo.update(lambda now: now.grant(name, principal))
        return after.get(name)

    def revoke(self, name: str, principal: str) -> Namespace:
        _, after = self.repo.update(lambda now: now.revoke(name, principal))
        return after.get(name)

    def remove(self, name: str) -> Namespace:
        before, after = self.repo.update(lambda now: now.remove(name))
        gone = before.get(name)
        self._refresh(after, gone.name, self.indexer.pages.read_root()[0].projects)
        return gone

    def _refresh(self, now: Namespaces, name: str, projects: Iterable[NormalizedName]) -> None:
        """Rewrite the pages of the projects ``name`` covers with what ``now`` says of them."""
        for project in projects:
            if covers(name, project):
                self.refresh_page(now, project)

    def refresh_page(self, now: Namespaces, project: NormalizedName) -> None:
        entries = now.entries(project)

        def edit(page: ProjectPage | None) -> ProjectPage | None:
            if page is None or page.namespaces == entries:
                return None
            return page.with_namespaces(entries)

        if self.indexer.pages.update(project, edit) is not None:
            log.info("the page of %s now says namespaces %s", project, entries)
