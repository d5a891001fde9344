"""Admin actions on a project: yank, unyank (PEP 592), delete a file, set the status (PEP 792).

The actions an authorized admin takes, whoever asks (the admin API, a test, a script): each checks
its input, changes the project's page through the indexer, and answers a small result or raises an
error of :mod:`skypi.core.errors` whose message says what to do. Who may act is not decided here
(the API checks the token first).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from skypi.core.errors import Conflict, DoesNotExist, EdgeUnavailable, InvalidRequest
from skypi.core.filenames import MAX_FILENAME_BYTES, VALID_PROJECT_NAME
from skypi.core.pages import FileEntry, ProjectPage, ProjectStatus, check_reason, check_status
from skypi.core.plan import Mark
from skypi.indexer.service import Gone, Indexer
from skypi.store.base import EdgeWriteFailed, PreconditionFailed

if TYPE_CHECKING:
    from skypi.store.kvs import EdgeQuarantine

log = logging.getLogger("skypi.admin")


@dataclass(frozen=True)
class Deletion:
    """A file removed from storage and from its project's page."""

    project: NormalizedName
    filename: str
    key: str


@dataclass(frozen=True)
class StatusChange:
    """A project's status (PEP 792) once set."""

    project: NormalizedName
    status: ProjectStatus
    reason: str | None


def require_project_name(project: str) -> NormalizedName:
    """The normalized name of ``project``, or :class:`InvalidRequest` if it cannot be one.

    >>> require_project_name("Foo_Bar")
    'foo-bar'
    """
    if len(project) > MAX_FILENAME_BYTES:  # none of its files could have a name
        raise InvalidRequest(
            f"A project name of {len(project):,} characters is too long: no file of it could "
            f"be stored (a filename holds at most {MAX_FILENAME_BYTES} bytes)."
        )
    if not VALID_PROJECT_NAME.match(project):
        raise InvalidRequest(
            f"{project!r} is not a project name: use letters, digits, '.', '_' and '-', "
            "starting and ending with a letter or digit (PEP 508)."
        )
    return canonicalize_name(project)


def _reason(reason: str) -> str:
    """A yank's reason, held to the one rule of an admin's reason (printable, bounded)."""
    try:
        return check_reason(reason) or ""
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def _mark(filename: str | None, version: str | None, yanked: str | None) -> Mark:
    """Which entries an action names: one file by name, or every file of a release."""
    if (filename is None) == (version is None):
        raise InvalidRequest("Give exactly one of 'filename' or 'version'.")
    if version is not None:
        try:
            Version(version)
        except InvalidVersion:
            raise InvalidRequest(
                f"{version!r} is not a version (PEP 440): give one as the project's files "
                "name it, such as 1.0 or 2.1.0rc1, or give a filename."
            ) from None
    return Mark(yanked, filename, version)


class Admin:
    """Admin actions over one indexer's pages."""

    def __init__(self, indexer: Indexer, edge: EdgeQuarantine | None = None) -> None:
        self.indexer = indexer
        self.edge = edge  # the CloudFront edge's quarantine records (AWS); None locally

    def yank(
        self,
        project: str,
        *,
        filename: str | None = None,
        version: str | None = None,
        reason: str = "",
    ) -> list[str]:
        """Yank one file or every file of a release: pip and uv skip them unless pinned, and
        show ``reason``. Returns the filenames yanked; :class:`DoesNotExist` if none were."""
        return self._mark(project, filename, version, _reason(reason), "yanked")

    def unyank(
        self, project: str, *, filename: str | None = None, version: str | None = None
    ) -> list[str]:
        """Undo a yank; returns the filenames unyanked, :class:`DoesNotExist` if none were."""
        return self._mark(project, filename, version, None, "unyanked")

    def _mark(
        self,
        project: str,
        filename: str | None,
        version: str | None,
        yanked: str | None,
        verb: str,
    ) -> list[str]:
        name = require_project_name(project)
        changed = self.indexer.update_files(name, _mark(filename, version, yanked))
        if not changed:
            what = filename or f"version {version}"
            raise DoesNotExist(f"Nothing to change: no {what} in {project!r}, or already {verb}.")
        log.info("%s %s", verb, ", ".join(changed))
        return changed

    def delete(self, project: str, filename: str) -> Deletion:
        """Delete one file from storage and from its page: the only way a published file goes
        (the bucket keeps its versions, so even this can be undone on AWS)."""
        name = require_project_name(project)
        page = self.indexer.pages.read(name).page
        entry = page.find(filename) if page else None
        if entry is None:
            raise DoesNotExist(f"No file {filename!r} in {project!r}.")
        deleted = self._delete_listed(entry)
        self.indexer.apply([Gone(entry.key)])  # also when another delete was first
        if not deleted:
            raise DoesNotExist(f"No file {filename!r} in {project!r}: it was deleted already.")
        log.info("deleted %s", entry.key)
        return Deletion(name, entry.filename, entry.key)

    def _delete_listed(self, entry: FileEntry) -> bool:
        """Delete the stored bytes that ``entry`` lists, and only those (a conditional
        delete on their ETag): False if they are gone already (another delete was first).
        Other bytes stored under that key since (a re-upload) are never deleted by it."""
        store = self.indexer.store
        try:
            store.delete(entry.key, if_match=entry.etag or None)
            return True
        except PreconditionFailed:
            pass
        info = store.head(entry.key)
        if info is None:
            return False
        if entry.sha256 != (info.sha256 or self.indexer.sha256_of(entry.key, size=info.size)):
            raise Conflict(
                f"{entry.key} holds other bytes than the file listed as {entry.filename!r} "
                "(replaced since it was listed): nothing was deleted. Run `skypi reindex` "
                "to list what is stored, then delete again."
            )
        try:  # the listed bytes, with another ETag (a copy): delete exactly that copy
            store.delete(entry.key, if_match=info.etag)
            return True
        except PreconditionFailed:
            if store.head(entry.key) is None:
                return False
            raise Conflict(f"{entry.key} changed while it was being deleted: try again.") from None

    def set_status(self, project: str, status: str, reason: str | None = None) -> StatusChange:
        """Set the project's status (PEP 792): archived and quarantined projects take no
        uploads, and a quarantined one lists no files and offers none for download. On AWS
        the edge's record of a quarantine is written before the page and removed after it
        (docs/operations.md): a failure in between leaves the files refused, never served."""
        name = require_project_name(project)
        try:
            checked, why = check_status(status, reason)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if self.indexer.pages.read(name).page is None:
            raise DoesNotExist(f"No project {project!r}.")
        if checked is ProjectStatus.QUARANTINED and self.edge is not None:
            try:
                self.edge.hold(name)
            except EdgeWriteFailed as exc:
                raise EdgeUnavailable(
                    f"Could not quarantine {name} at the edge ({exc}): nothing changed. "
                    "Send the request again."
                ) from exc
        page: ProjectPage | None = self.indexer.set_status(name, checked, why)
        if page is None:
            raise DoesNotExist(f"No project {project!r}.")
        self._settle(page)
        log.info("project %s is now %s", page.name, page.status)
        return StatusChange(page.name, page.status, page.status_reason)

    def _settle(self, page: ProjectPage) -> None:
        """Bring the edge in line with the status just written: a quarantined project's record
        written (again: another admin's lift may have removed it meanwhile) and its cached
        files and ``.metadata`` dropped; any other status's record removed, then written back
        if the page was quarantined again meanwhile. Sending the request again finishes it."""
        try:
            if page.withholds_files():
                if self.edge is not None:
                    self.edge.hold(page.name)
                if self.indexer.cdn is not None:  # exact paths (skypi.core.invalidation)
                    self.indexer.cdn.invalidate([entry.key for entry in page.files])
                return
            if self.edge is not None:
                self.edge.release(page.name)
                latest = self.indexer.pages.read(page.name).page
                if latest is not None and latest.withholds_files():
                    self.edge.hold(page.name)
        except EdgeWriteFailed as exc:
            refused = "refuses" if page.withholds_files() else "still refuses"
            raise EdgeUnavailable(
                f"{page.name} is {page.status}, and the edge {refused} its files, but its record "
                f"could not be brought in line ({exc}). Send the request again."
            ) from exc
