"""Build small, valid distributions for tests: the builders the benchmarks use too
(``bench/dists.py``), and what only tests need (files on disk, legacy zips, upload forms)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from bench.dists import metadata_text, sdist_bytes, sdist_name, wheel_bytes, wheel_name

__all__ = [
    "make_sdist",
    "make_wheel",
    "metadata_text",
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
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(f"{name}-{version}/PKG-INFO", metadata_text(name, version))
        zf.writestr(f"{name}-{version}/setup.py", "")
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
