"""Small, valid distributions built in memory: real wheels (METADATA, WHEEL, RECORD) and sdists.

The benchmarks' corpora are made of these, and so are the tests' (``tests/dists.py``)."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import zipfile

from packaging.utils import canonicalize_name

from skypi.client.doctor import with_record


def metadata_text(
    name: str,
    version: str,
    requires_python: str | None = None,
    requires: tuple[str, ...] = (),
    summary: str = "A test package",
) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: {summary}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n\n"


def wheel_bytes(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires: tuple[str, ...] = (),
    payload: bytes = b"",
    metadata: str | None = None,
    dist_info_name: str | None = None,
    blob: bytes = b"",
) -> bytes:
    """A wheel; ``blob`` adds a stored (uncompressed) binary member, for big files."""
    norm = canonicalize_name(name).replace("-", "_")
    dist_info = f"{dist_info_name or norm}-{version}.dist-info"
    module = norm
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\nPAYLOAD = {payload!r}\n".encode(),
        f"{dist_info}/METADATA": (
            metadata or metadata_text(name, version, requires_python, requires)
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: skypi-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if blob:
        files[f"{module}/blob.bin"] = blob
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in with_record(dist_info, files).items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = (
                zipfile.ZIP_STORED if path.endswith(".bin") else zipfile.ZIP_DEFLATED
            )
            zf.writestr(info, data)
    return buffer.getvalue()


def wheel_name(name: str, version: str) -> str:
    return f"{canonicalize_name(name).replace('-', '_')}-{version}-py3-none-any.whl"


def sdist_bytes(
    name: str,
    version: str,
    *,
    top: str | None = None,
    pkg_info: str | None = None,
    requires_python: str | None = None,
    blob: bytes = b"",
) -> bytes:
    """An sdist; ``blob`` adds a member after ``PKG-INFO``, for big files."""
    norm = canonicalize_name(name).replace("-", "_")
    top = top or f"{norm}-{version}"
    members = {
        f"{top}/pyproject.toml": b"[build-system]\nrequires = []\n",
    }
    if pkg_info is not False:
        members[f"{top}/PKG-INFO"] = (
            pkg_info or metadata_text(name, version, requires_python).replace("2.1", "2.2", 1)
        ).encode()
    if blob:
        members[f"{top}/blob.bin"] = blob
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), int(time.mktime((2024, 1, 1, 0, 0, 0, 0, 0, 0)))
            tar.addfile(info, io.BytesIO(data))
    # the gzip header's time fixed too: the same sdist is the same bytes on every run
    return gzip.compress(buffer.getvalue(), mtime=0)


def sdist_name(name: str, version: str) -> str:
    return f"{canonicalize_name(name).replace('-', '_')}-{version}.tar.gz"
