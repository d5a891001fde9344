"""Whether a file may join its project's page: one decision, made the same way wherever a file
arrives (an API upload's early check, a direct upload's plan and completion, and the indexer's
final check before it writes the page).

Pure: it sees the page and the candidate's facts, nothing else.

>>> from skypi.core.pages import ProjectPage, ProjectStatus
>>> wheel = Candidate("demo-1.0-py3-none-any.whl", "packages/demo/demo-1.0-py3-none-any.whl",
...                   "1.0", "wheel", "ab" * 32)
>>> decide(None, wheel).verdict
<Verdict.ADMIT: 'admit'>
>>> decide(ProjectPage.empty("demo").with_status(ProjectStatus.ARCHIVED, None), wheel).verdict
<Verdict.CLOSED: 'closed'>
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from skypi.core.errors import UploadRejected
from skypi.core.filenames import DistFilename, same_version
from skypi.core.keys import file_key
from skypi.core.pages import FileEntry, ProjectPage

ONE_SDIST: Final = "Only one sdist may be uploaded per release."


class Mode(enum.Enum):
    """Who brings a change to a page: the rules a file is held to depend on it."""

    UPLOAD = "upload"  # twine, uv publish, skypi publish: PyPI's upload rules apply
    DROP_IN = "drop-in"  # a file put into storage (a folder, a bucket): a name is listed once
    REBUILD = "rebuild"  # skypi reindex, start-up: what storage holds, held as a drop-in is
    ADMIN = "admin"  # an admin's edit of a page (yank, unyank, status): no file arrives

    @property
    def upload_rules(self) -> bool:
        """Whether PyPI's upload rules apply (closed projects, one sdist per release, and a
        re-upload of listed bytes from anywhere is the same file)."""
        return self is Mode.UPLOAD


class Verdict(enum.Enum):
    ADMIT = "admit"  # a new file: list it
    IDENTICAL = "identical"  # these very bytes are listed under this name already: nothing to do
    DUPLICATE = "duplicate"  # a second copy of the listed bytes, dropped under another key
    CONFLICT = "conflict"  # the name is listed with other bytes
    ONE_SDIST = "one-sdist"  # the release has its sdist already (PyPI allows one)
    CLOSED = "closed"  # the project takes no uploads (PEP 792: archived, quarantined)
    INVALID = "invalid"  # no valid distribution, or its bytes cannot be read: set aside
    RESERVED = "reserved"  # a drop-in that would start a project in a namespace (PEP 752)


@dataclass(frozen=True)
class Candidate:
    """What is known of a file before it is listed."""

    filename: str
    key: str  # where its bytes are (or will be) stored
    version: str
    kind: Literal["wheel", "sdist"]
    sha256: str

    @classmethod
    def upload(cls, dist: DistFilename, sha256: str, version: str | None = None) -> Candidate:
        """A file about to be uploaded, stored under its project's key for its filename;
        ``version``: its metadata's, once read (else the filename's)."""
        key = file_key(dist.project, dist.filename)
        return cls(dist.filename, key, version or str(dist.version), dist.kind, sha256)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    message: str = ""  # why not, in the words twine and uv show; empty when admitted
    existing: FileEntry | None = None  # the listed file of that name, if any

    @property
    def refused(self) -> bool:
        return self.verdict not in {Verdict.ADMIT, Verdict.IDENTICAL}

    def error(self) -> UploadRejected:
        """The refusal as the error an upload answers with."""
        assert self.refused, self
        return UploadRejected(self.message)


def already_exists(filename: str, sha256: str, detail: str = "") -> str:
    """The one message for a name that is taken by other bytes (twine, and people, look for
    its first words)."""
    return (
        f"File already exists ({filename!r}, with sha256 hash {sha256!r}{detail}). "
        "A published file never changes: upload a new version instead."
    )


def has_sdist(files: Iterable[FileEntry], version: str) -> bool:
    """Whether one of ``files`` is an sdist of the release ``version`` names, compared as PEP
    440 versions (``1.0.0`` is the release ``1.0``): PyPI allows one sdist per release.

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> sdist = FileEntry("a-1.0.tar.gz", "k", "1.0", "0", 1, now)
    >>> has_sdist([sdist], "1.0.0"), has_sdist([sdist], "1.0.post1")
    (True, False)
    """
    return any(same_version(f.version, version) and not f.filename.endswith(".whl") for f in files)


def decide(page: ProjectPage | None, candidate: Candidate, *, mode: Mode = Mode.UPLOAD) -> Decision:
    """Closed, identical, conflict, one sdist per release, or admit: in that order (a closed
    project refuses even a file it lists, as PyPI does). ``mode``: an upload is held to
    PyPI's upload rules (closed projects, one sdist per release); a file dropped into
    storage, or listed again by a rebuild, only to the rule that a name is listed once."""
    if page is None:
        return Decision(Verdict.ADMIT)
    files = {f.filename: f for f in page.files}
    return decide_among(files, page.upload_refusal(), candidate, mode=mode)


def decide_among(
    files: Mapping[str, FileEntry],
    refusal: str | None,
    candidate: Candidate,
    *,
    mode: Mode = Mode.UPLOAD,
) -> Decision:
    """:func:`decide` over a page's files by filename and its upload refusal (what a batch
    keeps while it adds many files to one page)."""
    upload = mode.upload_rules
    if upload and refusal:
        return Decision(Verdict.CLOSED, refusal)
    existing = files.get(candidate.filename)
    if existing is not None:
        # An upload of the listed bytes is a re-run, wherever they are stored; a second copy
        # dropped under another key is a second file of that name.
        if existing.sha256 == candidate.sha256 and (upload or existing.key == candidate.key):
            return Decision(Verdict.IDENTICAL, existing=existing)
        if existing.sha256 == candidate.sha256:  # a copy in another folder: nothing is wrong
            message = (
                f"{candidate.key} is a copy of {existing.key} (the same bytes): "
                "the file is listed once, from there"
            )
            return Decision(Verdict.DUPLICATE, message, existing)
        detail = "" if existing.key == candidate.key else f"; listed from {existing.key}"
        message = already_exists(candidate.filename, candidate.sha256, detail)
        return Decision(Verdict.CONFLICT, message, existing)
    if upload and candidate.kind == "sdist" and has_sdist(files.values(), candidate.version):
        return Decision(Verdict.ONE_SDIST, ONE_SDIST)
    return Decision(Verdict.ADMIT)
