"""Build small, valid distributions for tests: the builders the benchmarks use too
(``bench/dists.py``), and what only tests need (files on disk, legacy zips, upload forms)."""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from bench.dists import metadata_text, sdist_bytes, sdist_name, wheel_bytes, wheel_name
from packaging.utils import canonicalize_name

__all__ = [
    "make_sdist",
    "make_wheel",
    "metadata_text",
    "poisoned",
    "sdist_bytes",
    "sdist_name",
    "upload_form",
    "wheel_bytes",
    "wheel_name",
    "zip_sdist_bytes",
]


def make_wheel(directory: Path, name: str, version: str, **kwargs: object) -> Path:
    path = directory / wheel_name(name, version)
    path.write_bytes(wheel_bytes(name, version, **kwargs))  # type: ignore[arg-type]
    return path


def make_sdist(directory: Path, name: str, version: str, **kwargs: object) -> Path:
    path = directory / sdist_name(name, version)
    path.write_bytes(sdist_bytes(name, version, **kwargs))  # type: ignore[arg-type]
    return path


def zip_sdist_bytes(name: str, version: str) -> bytes:
    """A legacy ``.zip`` sdist, as old pypiserver folders hold them."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:  # dated: the same bytes on every run
        for path, text in (("PKG-INFO", metadata_text(name, version)), ("setup.py", "")):
            zf.writestr(zipfile.ZipInfo(f"{name}-{version}/{path}", (2024, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


def upload_form(
    data: bytes, filename: str, name: str, version: str, **overrides: str | None
) -> dict[str, str]:
    """The fields twine sends, with correct digests; ``None`` in overrides drops a field."""
    fields: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "sdist" if filename.endswith((".tar.gz", ".zip")) else "bdist_wheel",
        "pyversion": "source" if filename.endswith((".tar.gz", ".zip")) else "py3",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def _retar(data: bytes, change: Callable[[bytearray], None]) -> bytes:
    """A tar.gz sdist with its tar changed, then compressed again (the gzip stream is whole)."""
    tar = bytearray(gzip.decompress(data))
    change(tar)
    return gzip.compress(bytes(tar), mtime=0)


def _header(tar: bytearray, name: bytes, size: bytes) -> None:
    """Set the size field of the ustar header of ``name`` and make its checksum right."""
    at = tar.find(name + b"\0")
    tar[at + 124 : at + 136] = size
    tar[at + 148 : at + 156] = b" " * 8
    tar[at + 148 : at + 156] = b"%06o\0 " % sum(tar[at : at + 512])


def poisoned(name: str, version: str) -> dict[str, tuple[str, bytes]]:
    """Hand-made distributions that once crashed (or hung) the reader, by what is wrong:
    (filename, bytes). Each is refused with a reason now."""
    norm = canonicalize_name(name).replace("-", "_")
    wheel = bytearray(wheel_bytes(name, version))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # "encrypted"
        at = wheel.find(signature)
        while at >= 0:
            wheel[at + flags_at] |= 0x1
            at = wheel.find(signature, at + 4)
    top = f"{norm}-{version}".encode()
    sdist = sdist_bytes(name, version)
    huge = b"\x80" + b"\xff" * 11  # base-256: about 2**88 bytes
    return {
        "encrypted wheel": (wheel_name(name, version), bytes(wheel)),
        "tar size of 2**88": (
            sdist_name(name, version),
            _retar(sdist, lambda t: _header(t, top + b"/pyproject.toml", huge)),
        ),
        "PKG-INFO cut short": (
            sdist_name(name, version),
            _retar(sdist, lambda t: _header(t, top + b"/PKG-INFO", b"%011o\0" % 100_000)),
        ),
    }
