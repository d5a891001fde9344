"""Distribution filenames: which files are distributions, and what they say about themselves.

Parsing is delegated to :mod:`packaging.utils`; this module only adds the rules an index needs
on top (legacy sdist extensions found in existing pypiserver folders, and the strict PEP 625 /
wheel-name rules that uploads must follow).

>>> parse_filename("Foo_Bar-1.0-py3-none-any.whl").project
'foo-bar'
>>> parse_filename("foo-1.0.tar.gz").kind
'sdist'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from skypi.core.constants import DISTRIBUTION_SUFFIXES as DISTRIBUTION_SUFFIXES
from skypi.core.constants import SDIST_EXTENSIONS as SDIST_EXTENSIONS
from skypi.core.errors import InvalidDistribution
from skypi.core.keys import METADATA_SUFFIX

DistKind = Literal["wheel", "sdist"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
VALID_PROJECT_NAME = re.compile(
    r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z",
    re.IGNORECASE | re.ASCII,  # no long s, no Kelvin sign
)
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")
# A file-system name holds at most 255 bytes (ext4, APFS, NTFS), and a wheel's PEP 658 sidecar
# adds ".metadata" to its name.
MAX_FILENAME_BYTES = 255 - len(METADATA_SUFFIX)


@dataclass(frozen=True)
class DistFilename:
    """What a distribution's filename says: project, version and kind."""

    filename: str
    project: NormalizedName
    version: Version
    kind: DistKind
    raw_name: str  # the name part exactly as written in the filename

    @property
    def extension(self) -> str:
        if self.kind == "wheel":
            return ".whl"
        return next(ext for ext in SDIST_EXTENSIONS if self.filename.endswith(ext))


def check_safe_filename(filename: str) -> None:
    """Refuse names that could escape a folder or confuse a log or a page.

    >>> check_safe_filename("../evil-1.0.tar.gz")
    Traceback (most recent call last):
    ...
    skypi.core.errors.InvalidDistribution: Cannot upload a file with '/' or '\\' in the name.
    """
    if "/" in filename or "\\" in filename:
        raise InvalidDistribution("Cannot upload a file with '/' or '\\' in the name.")
    if _CONTROL.search(filename):
        raise InvalidDistribution("Cannot upload a file with control characters in the name.")
    if filename in {"", ".", ".."} or filename.startswith("."):
        raise InvalidDistribution(f"Invalid filename {filename!r}: it must not start with '.'.")
    if not _SAFE.fullmatch(filename):
        raise InvalidDistribution(
            f"Invalid filename {filename!r}: a distribution filename has only letters, digits "
            "and '.', '_', '+', '!', '-'."
        )
    if len(filename.encode()) > MAX_FILENAME_BYTES:
        raise InvalidDistribution(
            f"Filename too long: {len(filename.encode())} bytes, and a distribution filename "
            f"can have at most {MAX_FILENAME_BYTES} (a file name holds 255 bytes, and the "
            "'.metadata' file beside a wheel needs 9 more). Use a shorter project name."
        )


def parse_filename(filename: str) -> DistFilename:
    """Parse a wheel or sdist filename, accepting the legacy forms found in existing folders.

    Raises :class:`InvalidDistribution` for anything that is not a distribution.
    """
    check_safe_filename(filename)
    try:
        if filename.endswith(".whl"):
            name, version, _build, _tags = parse_wheel_filename(filename)
            return DistFilename(filename, name, version, "wheel", filename.split("-", 1)[0])
        for ext in SDIST_EXTENSIONS:
            if filename.endswith(ext):
                stem = filename[: -len(ext)]
                # packaging accepts only .tar.gz and .zip; the other legacy forms parse alike.
                name, version = parse_sdist_filename(stem + ".tar.gz")
                return DistFilename(filename, name, version, "sdist", stem.rsplit("-", 1)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion) as exc:
        raise InvalidDistribution(str(exc)) from exc
    raise InvalidDistribution(
        "Invalid file extension: Use .tar.gz, .whl or .zip extension. See "
        "https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ "
        "for more information"
    )


def expected_sdist_filename(project: NormalizedName, version: Version) -> str:
    """The only sdist filename PEP 625 allows for a release.

    >>> expected_sdist_filename(canonicalize_name("Some.Thing"), Version("1.02.3"))
    'some_thing-1.2.3.tar.gz'
    """
    return f"{project.replace('-', '_')}-{version}.tar.gz"


def wheel_name_part(project: NormalizedName) -> str:
    """The name part a wheel filename must carry: the normalized name with '_' for '-'."""
    return project.replace("-", "_")


def same_version(a: str, b: str) -> bool:
    """Whether two versions name one release (PEP 440 compares them: 1.0 is 1.0.0); two that
    do not parse are the same only as text.

    >>> same_version("1.0", "1.0.0"), same_version("1.0", "1.0.post1")
    (True, False)
    """
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


__all__ = [
    "SDIST_EXTENSIONS",
    "VALID_PROJECT_NAME",
    "DistFilename",
    "DistKind",
    "canonicalize_name",
    "check_safe_filename",
    "expected_sdist_filename",
    "parse_filename",
    "same_version",
    "wheel_name_part",
]
