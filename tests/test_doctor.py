"""``skypi doctor`` fails where an index misbehaves: each check against an index that gets it
wrong (the happy path runs end to end against ``skypi dev`` and ``skypi serve`` in e2e)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from skypi.client.doctor import MODULE, PROJECT, Doctor, Step, build_wheel
from skypi.core.filenames import parse_filename
from skypi.core.metadata import read_metadata

Handler = Callable[[httpx.Request], httpx.Response]
WHEEL = f"{MODULE}-0.1.1-py3-none-any.whl"
PAGE_URL = f"http://index.test/simple/{PROJECT}/"


def _doctor(handler: Handler, **kw: object) -> Doctor:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    doctor = Doctor("http://index.test", "skypi_admin", http=http, wait=0, **kw)  # type: ignore[arg-type]
    doctor.files = {WHEEL: {"filename": WHEEL, "url": f"../../packages/{PROJECT}/{WHEEL}"}}
    return doctor


def _page(files: list[dict[str, object]]) -> httpx.Response:
    return httpx.Response(
        200,
        json={"meta": {"api-version": "1.1"}, "name": PROJECT, "files": files},
        headers={"content-type": "application/vnd.pypi.simple.v1+json"},
    )


def _run(doctor: Doctor, check: Callable[[], str]) -> Step:
    return doctor._step("check", check)


def test_a_file_the_read_url_still_serves_after_delete_fails() -> None:
    """The CDN kept a deleted file (no invalidation): the verdict must say so."""

    def index(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/simple/{PROJECT}/":
            return _page([])  # the page was updated...
        return httpx.Response(200, content=b"old bytes")  # ...the file is still served

    doctor = _doctor(index)
    doctor.private = False
    step = _run(doctor, doctor._gone)
    assert step.status == "fail"
    assert WHEEL in step.detail
    assert "still served" in step.detail


def test_gone_passes_when_nothing_is_served() -> None:
    def index(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/simple/{PROJECT}/":
            return _page([])
        return httpx.Response(404)

    doctor = _doctor(index)
    assert _run(doctor, doctor._gone).status == "ok"


@pytest.mark.parametrize(
    ("anonymous", "wrong", "status"),
    [
        (401, 403, "ok"),
        (200, 200, "skip"),  # a public index: said, not failed
        (401, 200, "fail"),  # any token reads
        (403, 403, "fail"),  # no 401: pip would never send credentials
        (500, 403, "fail"),
    ],
)
def test_private_reads(anonymous: int, wrong: int, status: str) -> None:
    def index(request: httpx.Request) -> httpx.Response:
        return httpx.Response(wrong if "authorization" in request.headers else anonymous)

    doctor = _doctor(index)
    assert _run(doctor, doctor._private).status == status


def test_bytes_that_do_not_match_the_page_fail() -> None:
    data = b"wheel bytes"

    def index(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"other bytes")

    doctor = _doctor(index)
    doctor.files[WHEEL] |= {
        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
        "core-metadata": {"sha256": "0" * 64},
    }
    step = _run(doctor, doctor._files)
    assert step.status == "fail"
    assert "do not match" in step.detail


def test_an_answer_that_is_no_index_page_fails_without_a_traceback() -> None:
    def index(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>a login page</html>")

    doctor = _doctor(index)
    step = _run(doctor, doctor._json_page)
    assert step.status == "fail"


def test_pages_sent_uncompressed_fail_the_gzip_check() -> None:
    def index(request: httpx.Request) -> httpx.Response:
        body = _page([]).content
        return httpx.Response(200, stream=httpx.ByteStream(body))  # as sent: not gzip

    doctor = _doctor(index)
    step = _run(doctor, doctor._compressed)
    assert step.status == "fail"
    assert "Content-Encoding None" in step.detail


def test_the_throwaway_wheel_is_a_valid_distribution(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "0.123.1")
    dist = parse_filename(wheel.name)
    data = wheel.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert f"{MODULE}-0.123.1.dist-info/RECORD" in archive.namelist()
    meta = read_metadata(
        dist,
        len(data),
        lambda start, length: data[start : start + length],
        lambda: io.BytesIO(data),
    )
    assert meta.name == PROJECT
    assert str(meta.version) == "0.123.1"
