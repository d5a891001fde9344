"""Hostile uploads against a running server: a clear 4xx each, nothing left, still serving."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.dists import (
    metadata_text,
    sdist_bytes,
    sdist_name,
    upload_form,
    wheel_bytes,
    wheel_name,
)
from tests.e2e.conftest import Server, start_server

pytestmark = pytest.mark.e2e


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".skypi" not in p.parts
    }


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "bomb-1.0.dist-info/METADATA", metadata_text("bomb", "1.0") + "x" * (200 * 1024 * 1024)
        )
        zf.writestr("bomb-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
        zf.writestr("bomb-1.0.dist-info/RECORD", "")
    return buffer.getvalue()


def _case(
    message: str, filename: str, data: bytes, name: str, version: str, **fields: str | None
) -> tuple[str, str, bytes, dict[str, str]]:
    """A hostile upload and the message of the one rule that must refuse it."""
    return message, filename, data, upload_form(data, filename, name, version, **fields)


def _wheel_without(member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(GOOD)) as good, zipfile.ZipFile(buffer, "w") as out:
        for info in good.infolist():
            if not info.filename.endswith(f".dist-info/{member}"):
                out.writestr(info, good.read(info))
    return buffer.getvalue()


def GOOD_IO() -> io.BytesIO:
    return io.BytesIO(GOOD)


KELVIN = "\u212aelvin"  # the Kelvin sign K, then "elvin": lowercases to ASCII "kelvin"
LONG = "a" * 240
GOOD = wheel_bytes("victim", "1.0")
SLASH = "Cannot upload a file with '/' or '\\' in the name."
CASES = {
    "path traversal": _case(SLASH, "../victim-1.0-py3-none-any.whl", GOOD, "victim", "1.0"),
    "backslash": _case(SLASH, "..\\victim-1.0-py3-none-any.whl", GOOD, "victim", "1.0"),
    "name mismatch": _case(
        "Start filename for 'other' with 'other'.",
        wheel_name("victim", "1.0"),
        GOOD,
        "other",
        "1.0",
    ),
    "metadata name mismatch": _case(
        "The metadata name 'evil' does not match the filename 'victim-1.0-py3-none-any.whl'.",
        wheel_name("victim", "1.0"),
        wheel_bytes("victim", "1.0", metadata=metadata_text("evil", "1.0")),
        "victim",
        "1.0",
    ),
    "not a zip": _case(
        "Invalid distribution file. File is not a zipfile",
        wheel_name("victim", "1.0"),
        b"not a zip at all",
        "victim",
        "1.0",
    ),
    "no METADATA": _case(
        "does not contain the required METADATA file: victim-1.0.dist-info/METADATA",
        wheel_name("victim", "1.0"),
        wheel_bytes("victim", "1.0", dist_info_name="elsewhere"),
        "victim",
        "1.0",
    ),
    "no WHEEL": _case(
        "WHEEL not found at victim-1.0.dist-info/WHEEL",
        wheel_name("victim", "1.0"),
        _wheel_without("WHEEL"),
        "victim",
        "1.0",
    ),
    "no RECORD": _case(
        "does not contain the required RECORD file: victim-1.0.dist-info/RECORD",
        wheel_name("victim", "1.0"),
        _wheel_without("RECORD"),
        "victim",
        "1.0",
    ),
    "sdist PKG-INFO in another folder": _case(
        "PKG-INFO not found at victim-1.0/PKG-INFO",
        sdist_name("victim", "1.0"),
        sdist_bytes("victim", "1.0", top="src"),
        "victim",
        "1.0",
    ),
    "Kelvin sign in the form's name": _case(
        f"{KELVIN!r} is an invalid value for Name",
        wheel_name("kelvin", "1.0"),
        wheel_bytes("kelvin", "1.0"),
        KELVIN,
        "1.0",
    ),
    "Kelvin sign in METADATA only": _case(
        f"{KELVIN!r} is an invalid value for Name (in kelvin-1.0.dist-info/METADATA)",
        wheel_name("kelvin", "1.0"),
        wheel_bytes("kelvin", "1.0", metadata=metadata_text(KELVIN, "1.0")),
        "kelvin",
        "1.0",
    ),
    "filename over 255 bytes": _case(
        "Filename too long: 261 bytes",
        wheel_name(LONG, "1.0"),
        wheel_bytes(LONG, "1.0"),
        LONG,
        "1.0",
    ),
    "zip bomb": _case(
        "Invalid distribution file. bomb-1.0.dist-info/METADATA is too large.",
        "bomb-1.0-py3-none-any.whl",
        _zip_bomb(),
        "bomb",
        "1.0",
    ),
    "digest mismatch": _case(
        "The digest supplied does not match a digest calculated from the uploaded file.",
        wheel_name("victim", "1.0"),
        GOOD,
        "victim",
        "1.0",
        sha256_digest=hashlib.sha256(b"other").hexdigest(),
        blake2_256_digest=None,
    ),
    "no digest": _case(
        "Error: Include at least one message digest.",
        wheel_name("victim", "1.0"),
        GOOD,
        "victim",
        "1.0",
        sha256_digest=None,
        blake2_256_digest=None,
    ),
    "html in name": _case(
        "'<script>alert(1)</script>' is an invalid value for Name.",
        wheel_name("victim", "1.0"),
        GOOD,
        "<script>alert(1)</script>",
        "1.0",
    ),
    "html in version": _case(
        "'1.0<b>' is invalid for 'version'.", wheel_name("victim", "1.0"), GOOD, "victim", "1.0<b>"
    ),
    "oversize": _case(
        "File too large. Limit for this index is 1 MiB (skypi serve --max-upload-size).",
        wheel_name("victim", "1.0"),
        wheel_bytes(
            "victim",
            "1.0",
            payload=b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(60000)),
        ),
        "victim",
        "1.0",
    ),
    "exe": _case(
        "Invalid file extension: Use .tar.gz, .whl or .zip extension.",
        "victim-1.0.exe",
        GOOD,
        "victim",
        "1.0",
        filetype="bdist_wheel",
    ),
    "control char": _case(
        "a distribution filename has only letters, digits and '.', '_', '+', '!', '-'.",
        "victim-1.0-py3-none-any\x07.whl",
        GOOD,
        "victim",
        "1.0",
    ),
}


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    tmp = tmp_path_factory.mktemp("hostile")
    folder = tmp / "packages"
    folder.mkdir()
    (folder / wheel_name("existing", "1.0")).write_bytes(wheel_bytes("existing", "1.0"))
    srv = start_server(folder, tmp / "server.log", "-a", ".", "--max-upload-size", "1M")
    yield srv  # type: ignore[misc]
    srv.stop()


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_upload(small_server: Server, case: str) -> None:
    message, filename, data, form = CASES[case]
    before = _snapshot(small_server.folder)
    folders = sorted(p for p in small_server.folder.rglob("*") if p.is_dir())
    response = httpx.post(
        f"{small_server.url}/legacy/", data=form, files={"content": (filename, data)}, timeout=60
    )
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    assert message in response.text, (case, response.text)  # the rule that refused it
    assert response.headers["content-type"].startswith("text/plain")
    assert _snapshot(small_server.folder) == before
    assert sorted(p for p in small_server.folder.rglob("*") if p.is_dir()) == folders
    assert httpx.get(f"{small_server.index}existing/", timeout=5).status_code == 200
    assert not list(small_server.folder.rglob(".~skypi-*"))


def test_same_name_different_bytes_is_refused(small_server: Server) -> None:
    name = wheel_name("existing", "1.0")
    data = wheel_bytes("existing", "1.0", payload=b"different")
    response = httpx.post(
        f"{small_server.url}/legacy/",
        files={"content": (name, data)},
        data=upload_form(data, name, "existing", "1.0"),
        timeout=30,
    )
    assert response.status_code == 400
    assert response.text.startswith("File already exists")
    same = (small_server.folder / name).read_bytes()
    response = httpx.post(
        f"{small_server.url}/legacy/",
        files={"content": (name, same)},
        data=upload_form(same, name, "existing", "1.0"),
        timeout=30,
    )
    assert response.status_code == 200
