"""Core metadata from distributions, read the way an index should: little, and bounded.

Wheels and zip sdists are read through the zip central directory with ranged reads, so only the
directory and the one member are fetched. Tar sdists are streamed to the end (every member must
be under the one top-level folder) and never unpacked. Every read is bounded so a hostile
archive cannot exhaust memory or time.

The caller supplies the bytes (a ``read_at(offset, length)`` function or a stream); this module
does no I/O of its own.
"""

from __future__ import annotations

import bz2
import io
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, Final

from packaging.metadata import parse_email
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidName, NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import DistFilename

ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, length)`` returns exactly that byte range of the stored file."""

METADATA_VERSIONS: Final = frozenset(
    {"1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6"}
)


@dataclass(frozen=True)
class Limits:
    """Bounds for reading untrusted archives."""

    max_members: int = 100_000
    max_metadata_bytes: int = 8 * 1024 * 1024
    max_zip_read_bytes: int = 64 * 1024 * 1024  # central directory + member, all ranged reads
    max_ratio: int = 100  # decompressed / compressed, for the metadata member and tar streams
    min_stream_budget: int = 64 * 1024 * 1024  # tar streams may always decompress this much


DEFAULT_LIMITS: Final = Limits()


@dataclass(frozen=True)
class CoreMetadata:
    """The fields an index needs, and the exact bytes they came from (served as PEP 658)."""

    raw: bytes
    metadata_version: str
    name: str
    project: NormalizedName
    version: Version
    requires_python: str | None
    # What the release's page for people shows (read here, in the one parse of these bytes).
    summary: str = ""
    description: str = ""
    description_content_type: str | None = None


def parse_core_metadata(raw: bytes, where: str) -> CoreMetadata:
    """Parse METADATA / PKG-INFO bytes and check the fields an index relies on.

    >>> m = parse_core_metadata(b"Metadata-Version: 2.1\\nName: Foo\\nVersion: 1.0\\n", "x")
    >>> (m.project, str(m.version), m.requires_python)
    ('foo', '1.0', None)
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDistribution(f"Invalid distribution file. {where} is not UTF-8.") from exc
    fields, _unparsed = parse_email(text)
    mv = fields.get("metadata_version")
    if mv not in METADATA_VERSIONS:
        raise InvalidDistribution(
            f"{mv!r} is not a valid metadata version (in {where}). See "
            "https://packaging.python.org/specifications/core-metadata for more information."
        )
    name = fields.get("name")
    if not name:
        raise InvalidDistribution(f"Invalid distribution file. {where} has no Name.")
    try:  # ASCII only: a look-alike (the Kelvin sign K for K) must not pass for another name
        project = canonicalize_name(name, validate=True)
    except InvalidName as exc:
        raise InvalidDistribution(
            f"{name!r} is an invalid value for Name (in {where}): a name has only ASCII "
            "letters, digits and '.', '_', '-', and starts and ends with a letter or digit. "
            "Fix the name in your project's metadata (pyproject.toml) and rebuild."
        ) from exc
    version_text = fields.get("version") or ""
    try:
        version = Version(version_text)
    except InvalidVersion as exc:
        raise InvalidDistribution(
            f"{version_text!r} is invalid for 'version' (in {where})."
        ) from exc
    requires_python = fields.get("requires_python") or None
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as exc:
            raise InvalidDistribution(
                f"{requires_python!r} is invalid for 'Requires-Python' (in {where})."
            ) from exc
    return CoreMetadata(
        raw,
        mv,
        name,
        project,
        version,
        requires_python,
        summary=str(fields.get("summary") or ""),
        description=str(fields.get("description") or ""),
        description_content_type=fields.get("description_content_type"),
    )


class _RangedFile(io.RawIOBase):
    """A seekable file over ``read_at`` that refuses to read more than a budget."""

    def __init__(self, read_at: ReadAt, size: int, budget: int) -> None:
        self._read_at, self._size, self._budget, self._pos = read_at, size, budget, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        length = min(len(buffer), self._size - self._pos)
        if length <= 0:
            return 0
        self._budget -= length
        if self._budget < 0:
            raise InvalidDistribution("Invalid distribution file. The zip directory is too large.")
        data = self._read_at(self._pos, length)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


_BUILD_IT: Final = "build it with a standard build tool (python -m build, uv build)."
_ONE_TOP: Final = (
    f"Invalid distribution file. Incorrect number of top-level directories in sdist: {_BUILD_IT}"
)


def _open_zip(read_at: ReadAt, size: int, limits: Limits) -> zipfile.ZipFile:
    raw = _RangedFile(read_at, size, limits.max_zip_read_bytes)
    try:
        archive = zipfile.ZipFile(io.BufferedReader(raw, buffer_size=64 * 1024))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidDistribution("Invalid distribution file. File is not a zipfile") from exc
    except _ZIP_FEATURES as exc:
        raise _zip_refusal(exc, "The zip archive") from exc
    names = archive.namelist()
    if len(names) > limits.max_members:
        raise InvalidDistribution("Invalid distribution file. Too many members in the archive.")
    if len(set(names)) != len(names):  # which copy counts would depend on the reader: PyPI refuses
        twice = sorted({n for n in names if names.count(n) > 1})[:3]
        raise InvalidDistribution(
            f"Invalid distribution file. Duplicate member names in the archive: {twice}. "
            f"{_BUILD_IT}"
        )
    return archive


# What zipfile raises for archive features it does not read: encryption (RuntimeError), strong
# encryption, patched data or a newer "version needed to extract" (NotImplementedError), and a
# name flagged UTF-8 that is not (UnicodeDecodeError).
_ZIP_FEATURES: Final = (RuntimeError, NotImplementedError, UnicodeDecodeError)


def _zip_refusal(exc: Exception, what: str) -> InvalidDistribution:
    """A refusal that says which zip feature stopped the read, without zipfile's internals.

    >>> print(_zip_refusal(NotImplementedError("zip file version 9.9"), "The zip archive"))
    Invalid distribution file. The zip archive uses a zip feature an index does not read: zip \
file version 9.9.
    """
    if isinstance(exc, UnicodeDecodeError):
        reason = "holds a name flagged UTF-8 that is not UTF-8"
    elif isinstance(exc, NotImplementedError):  # a RuntimeError too: asked first
        reason = f"uses a zip feature an index does not read: {exc}"
    else:
        reason = "is encrypted"
    return InvalidDistribution(f"Invalid distribution file. {what} {reason}.")


def _read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> bytes:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InvalidDistribution(
            "Invalid distribution file. Only STORED and DEFLATED compression is allowed."
        )
    if info.file_size > limits.max_metadata_bytes:
        raise InvalidDistribution(f"Invalid distribution file. {info.filename} is too large.")
    if info.file_size > max(1, info.compress_size) * limits.max_ratio and info.file_size > 4096:
        raise InvalidDistribution(
            f"Invalid distribution file. {info.filename} has a suspicious compression ratio."
        )
    try:
        with archive.open(info) as member:
            data = member.read(limits.max_metadata_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise InvalidDistribution(f"Invalid distribution file. {exc}") from exc
    except _ZIP_FEATURES as exc:
        raise _zip_refusal(exc, info.filename) from exc
    if len(data) > limits.max_metadata_bytes:
        raise InvalidDistribution(f"Invalid distribution file. {info.filename} is too large.")
    return data


def wheel_metadata(
    dist: DistFilename, size: int, read_at: ReadAt, limits: Limits = DEFAULT_LIMITS
) -> CoreMetadata:
    """Read ``<name>-<version>.dist-info/METADATA`` from a wheel through ranged reads."""
    raw_version = dist.filename.split("-")[1]
    expected = f"{dist.raw_name}-{raw_version}.dist-info/METADATA"
    with _open_zip(read_at, size, limits) as archive:
        dist_infos = {
            name.split("/", 1)[0]
            for name in archive.namelist()
            if name.split("/", 1)[0].endswith(".dist-info") and "/" in name
        }
        candidates = [
            d
            for d in dist_infos
            if canonicalize_name(d[: -len(".dist-info")].rsplit("-", 1)[0]) == dist.project
        ]
        if len(dist_infos) > 1 and len(candidates) != 1:
            raise InvalidDistribution(
                f"Wheel '{dist.filename}' has more than one .dist-info directory."
            )
        try:
            info = archive.getinfo(f"{candidates[0]}/METADATA") if candidates else None
        except KeyError:
            info = None
        if info is None:
            raise InvalidDistribution(
                f"Wheel '{dist.filename}' does not contain the required METADATA file: {expected}"
            )
        meta = parse_core_metadata(_read_zip_member(archive, info, limits), info.filename)
        names = set(archive.namelist())
        if f"{candidates[0]}/WHEEL" not in names:
            raise InvalidDistribution(
                f"Invalid distribution file. WHEEL not found at {candidates[0]}/WHEEL: every "
                "wheel has one. Build the wheel with a standard build tool (python -m build, "
                "uv build) instead of zipping files by hand."
            )
        if f"{candidates[0]}/RECORD" not in names:
            raise InvalidDistribution(
                f"Wheel '{dist.filename}' does not contain the required RECORD file: "
                f"{candidates[0]}/RECORD. Build the wheel with a standard build tool "
                "(python -m build, uv build)."
            )
        return meta


def _zip_sdist_metadata(
    dist: DistFilename, size: int, read_at: ReadAt, limits: Limits
) -> CoreMetadata:
    with _open_zip(read_at, size, limits) as archive:
        tops = {name.split("/", 1)[0] for name in archive.namelist()}
        if len(tops) != 1:
            raise InvalidDistribution(_ONE_TOP)
        top = tops.pop()
        check_sdist_top(dist, top)
        where = f"{top}/PKG-INFO"
        try:
            info = archive.getinfo(where)
        except KeyError as exc:
            raise InvalidDistribution(
                f"Invalid distribution file. PKG-INFO not found at {where}"
            ) from exc
        return parse_core_metadata(_read_zip_member(archive, info, limits), where)


def check_sdist_top(dist: DistFilename, top: str) -> None:
    """An sdist unpacks into one folder named ``<name>-<version>`` like the file itself
    (compared as names and versions compare, so old ``Foo.Bar-1.0`` folders pass).

    >>> from skypi.core.filenames import parse_filename
    >>> check_sdist_top(parse_filename("foo_bar-1.0.tar.gz"), "Foo.Bar-1.0")
    >>> check_sdist_top(parse_filename("foo_bar-1.0.tar.gz"), "src")
    Traceback (most recent call last):
    ...
    skypi.core.errors.InvalidDistribution: Invalid distribution file. PKG-INFO not found at ...
    """
    name, _, version = top.rpartition("-")
    try:
        agrees = canonicalize_name(name) == dist.project and Version(version) == dist.version
    except InvalidVersion:
        agrees = False
    if not agrees:
        expected = dist.filename[: -len(dist.extension)]
        raise InvalidDistribution(
            f"Invalid distribution file. PKG-INFO not found at {expected}/PKG-INFO: an sdist "
            f"holds one folder named like the file ({expected}/), not {top + '/'!r}. Build it "
            "with a standard build tool (python -m build, uv build)."
        )


class _BoundedStream(io.RawIOBase):
    """Decompressed bytes of a stream, failing once more than ``budget`` have been produced."""

    def __init__(self, source: io.BufferedIOBase, budget: int) -> None:
        self._source, self._budget = source, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._source.read(len(buffer))
        except (OSError, EOFError, zlib.error) as exc:
            raise InvalidDistribution(f"Invalid distribution file. {exc}") from exc
        self._budget -= len(data)
        if self._budget < 0:
            raise InvalidDistribution(
                "Invalid distribution file. The archive decompresses to too much data."
            )
        buffer[: len(data)] = data
        return len(data)


def _decompressor(dist: DistFilename, stream: IO[bytes]) -> io.BufferedIOBase:
    import gzip

    if dist.filename.endswith(".tar.bz2"):
        return bz2.BZ2File(stream, mode="rb")
    return gzip.GzipFile(fileobj=stream, mode="rb")


def _tar_members(
    archive: tarfile.TarFile, limits: Limits, budget: int
) -> Iterator[tarfile.TarInfo]:
    """The members of a streamed tar. One whose header claims more bytes than the stream may
    decompress to (``budget``) is refused before tarfile skips over it: its skip reads the
    claimed size in 10 KiB steps even past the end, so 2**88 bytes would never finish."""
    count = 0
    while True:
        try:
            member = archive.next()
        except tarfile.TarError as exc:
            raise InvalidDistribution(f"Invalid distribution file. {exc}") from exc
        if member is None:
            return
        count += 1
        if count > limits.max_members:
            raise InvalidDistribution("Invalid distribution file. Too many members in the archive.")
        if not 0 <= member.size <= budget:
            raise InvalidDistribution(
                f"Invalid distribution file. {member.name!r} claims {member.size:,} bytes in "
                "its tar header: the archive decompresses to too much data, or its header lies."
            )
        yield member


def _read_to_end(stream: IO[bytes]) -> None:
    """Decompress what is left: a file still being written (or cut short) fails here, at its
    missing gzip/bzip2 trailer, instead of being published with the digest of a prefix."""
    while stream.read(1024 * 1024):
        pass


def _tar_sdist_metadata(
    dist: DistFilename, size: int, stream: IO[bytes], limits: Limits
) -> CoreMetadata:
    budget = max(limits.min_stream_budget, size * limits.max_ratio)
    bounded = io.BufferedReader(_BoundedStream(_decompressor(dist, stream), budget))
    try:
        archive = tarfile.open(fileobj=bounded, mode="r|")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InvalidDistribution("Invalid distribution file. File is not a tar archive") from exc
    top: str | None = None
    meta: CoreMetadata | None = None
    with archive:
        for member in _tar_members(archive, limits, budget):  # every member: one top folder
            parts = member.name.strip("/").split("/")
            if top is None:
                top = parts[0]
                check_sdist_top(dist, top)
            elif parts[0] != top:
                raise InvalidDistribution(_ONE_TOP)
            if len(parts) == 2 and parts[1] == "PKG-INFO" and member.isfile():
                if meta is not None:
                    raise InvalidDistribution(
                        f"Invalid distribution file. {member.name} is there twice. {_BUILD_IT}"
                    )
                if member.size > limits.max_metadata_bytes:
                    raise InvalidDistribution("Invalid distribution file. PKG-INFO is too large.")
                extracted = archive.extractfile(member)
                assert extracted is not None
                try:
                    raw = extracted.read()
                except tarfile.TarError as exc:  # the header claims more bytes than follow
                    raise InvalidDistribution(
                        f"Invalid distribution file. {member.name} is cut short: its tar "
                        f"header claims {member.size:,} bytes ({exc})."
                    ) from exc
                meta = parse_core_metadata(raw, member.name)
        _read_to_end(bounded)
    if meta is None:
        raise InvalidDistribution(
            f"Invalid distribution file. PKG-INFO not found at {top or dist.raw_name}/PKG-INFO"
        )
    return meta


def sdist_metadata(
    dist: DistFilename,
    size: int,
    read_at: ReadAt,
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]],
    limits: Limits = DEFAULT_LIMITS,
) -> CoreMetadata:
    """Read the top-level ``PKG-INFO`` of a ``.tar.gz`` (streamed) or ``.zip`` (ranged) sdist."""
    if dist.filename.endswith(".zip"):
        return _zip_sdist_metadata(dist, size, read_at, limits)
    with open_stream() as stream:
        return _tar_sdist_metadata(dist, size, stream, limits)


def read_metadata(
    dist: DistFilename,
    size: int,
    read_at: ReadAt,
    open_stream: Callable[[], AbstractContextManager[IO[bytes]]],
    limits: Limits = DEFAULT_LIMITS,
) -> CoreMetadata:
    """The core metadata of any distribution, checked against its filename.

    Only :class:`InvalidDistribution` leaves for what the archive holds: whatever else the
    zip, tar, gzip or email parsers raise on hostile bytes (an "encrypted" flag, an unknown
    "version needed to extract", a name flagged UTF-8 that is not) is one refusal too, so no
    archive can stop the index. A fault of the storage that supplies the bytes is not the
    archive's, and leaves as it was raised."""
    guarded_read_at, guarded_open = _storage_guarded(read_at, open_stream)
    try:
        if dist.kind == "wheel":
            meta = wheel_metadata(dist, size, guarded_read_at, limits)
        else:
            meta = sdist_metadata(dist, size, guarded_read_at, guarded_open, limits)
    except InvalidDistribution:
        raise
    except _StorageFault as fault:
        raise fault.original from None
    except Exception as exc:
        raise InvalidDistribution(
            f"Invalid distribution file. The archive cannot be read: {type(exc).__name__}: "
            f"{str(exc)[:200]}"
        ) from exc
    check_agrees(dist, meta)
    return meta


class _StorageFault(Exception):
    """A storage error carried through the parsers untouched (they must not turn it into a
    refusal): an ``OSError`` keeps its old meaning for the parsers, anything else is carried."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


class _GuardedStream(io.RawIOBase):
    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._stream.read(len(buffer))
        except (OSError, EOFError):
            raise
        except Exception as exc:
            raise _StorageFault(exc) from exc
        buffer[: len(data)] = data
        return len(data)


def _storage_guarded(
    read_at: ReadAt, open_stream: Callable[[], AbstractContextManager[IO[bytes]]]
) -> tuple[ReadAt, Callable[[], AbstractContextManager[IO[bytes]]]]:
    def guarded_read_at(start: int, length: int) -> bytes:
        try:
            return read_at(start, length)
        except (OSError, EOFError):
            raise
        except Exception as exc:
            raise _StorageFault(exc) from exc

    @contextmanager
    def guarded_open() -> Iterator[IO[bytes]]:
        with ExitStack() as stack:
            try:
                stream = stack.enter_context(open_stream())
            except (OSError, EOFError):
                raise
            except Exception as exc:
                raise _StorageFault(exc) from exc
            yield io.BufferedReader(_GuardedStream(stream))

    return guarded_read_at, guarded_open


def read_file_metadata(
    dist: DistFilename, fh: IO[bytes], size: int, limits: Limits = DEFAULT_LIMITS
) -> CoreMetadata:
    """:func:`read_metadata` of an open, seekable file (an upload being received, a file about
    to be published); the caller keeps it open."""

    def read_at(start: int, length: int) -> bytes:
        fh.seek(start)
        return fh.read(length)

    @contextmanager
    def reopen() -> Iterator[IO[bytes]]:
        fh.seek(0)
        yield fh

    return read_metadata(dist, size, read_at, reopen, limits)


def check_agrees(dist: DistFilename, meta: CoreMetadata) -> None:
    """The name and version inside must be the ones the filename claims."""
    if meta.project != dist.project:
        raise InvalidDistribution(
            f"The metadata name {meta.name!r} does not match the filename {dist.filename!r}."
        )
    if meta.version != dist.version:
        raise InvalidDistribution(
            f"Version in filename should be '{meta.version}' not '{dist.version}'."
        )
