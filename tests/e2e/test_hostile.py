"""Hostile uploads against a running server: a clear 4xx each, nothing left, still serving."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.dists import metadata_text, upload_form, wheel_bytes, wheel_name
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
    filename: str, data: bytes, name: str, version: str, **fields: str | None
) -> tuple[str, bytes, dict[str, str]]:
    return filename, data, upload_form(data, filename, name, version, **fields)


GOOD = wheel_bytes("victim", "1.0")
CASES = {
    "path traversal": _case("../victim-1.0-py3-none-any.whl", GOOD, "victim", "1.0"),
    "backslash": _case("..\\victim-1.0-py3-none-any.whl", GOOD, "victim", "1.0"),
    "name mismatch": _case(wheel_name("victim", "1.0"), GOOD, "other", "1.0"),
    "metadata name mismatch": _case(
        wheel_name("victim", "1.0"),
        wheel_bytes("victim", "1.0", metadata=metadata_text("evil", "1.0")),
        "victim",
        "1.0",
    ),
    "not a zip": _case(wheel_name("victim", "1.0"), b"not a zip at all", "victim", "1.0"),
    "no METADATA": _case(
        wheel_name("victim", "1.0"),
        wheel_bytes("victim", "1.0", dist_info_name="elsewhere"),
        "victim",
        "1.0",
    ),
    "zip bomb": _case("bomb-1.0-py3-none-any.whl", _zip_bomb(), "bomb", "1.0"),
    "digest mismatch": _case(
        wheel_name("victim", "1.0"),
        GOOD,
        "victim",
        "1.0",
        sha256_digest=hashlib.sha256(b"other").hexdigest(),
        blake2_256_digest=None,
    ),
    "no digest": _case(
        wheel_name("victim", "1.0"),
        GOOD,
        "victim",
        "1.0",
        sha256_digest=None,
        blake2_256_digest=None,
    ),
    "html in name": _case(wheel_name("victim", "1.0"), GOOD, "<script>alert(1)</script>", "1.0"),
    "html in version": _case(wheel_name("victim", "1.0"), GOOD, "victim", "1.0<b>"),
    "oversize": _case(
        wheel_name("victim", "1.0"),
        wheel_bytes(
            "victim",
            "1.0",
            payload=b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(60000)),
        ),
        "victim",
        "1.0",
    ),
    "exe": _case("victim-1.0.exe", GOOD, "victim", "1.0", filetype="bdist_wheel"),
    "control char": _case("victim-1.0-py3-none-any\x07.whl", GOOD, "victim", "1.0"),
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
    filename, data, form = CASES[case]
    before = _snapshot(small_server.folder)
    response = httpx.post(
        f"{small_server.url}/legacy/", data=form, files={"content": (filename, data)}, timeout=60
    )
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    assert len(response.text.strip()) > 10, response.text  # a message a person can act on
    assert response.headers["content-type"].startswith("text/plain")
    assert _snapshot(small_server.folder) == before
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
