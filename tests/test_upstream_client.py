"""The upstream client of views against hostile answers: too big, not JSON, redirected to a
file: URL, an error status; and what it counts."""

from __future__ import annotations

import io
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from skypi.store.upstream import Upstream, UpstreamLimits, UpstreamRefused, UpstreamUnavailable
from tests.loopback import serving

ANSWERS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/json/": (200, {"Content-Type": "application/vnd.pypi.simple.v1+json", "ETag": '"1"'}, b"{}"),
    "/html/": (200, {"Content-Type": "text/html"}, b"<html></html>"),
    "/big/": (200, {"Content-Type": "application/json"}, b"[" + b"0," * 600 + b"0]"),
    "/to-file/": (302, {"Location": "file:///etc/passwd"}, b""),
    "/to-ftp/": (302, {"Location": "ftp://127.0.0.1/x"}, b""),
    "/to-json/": (302, {"Location": "/json/"}, b""),
    "/broken/": (500, {}, b"oops"),
    "/file.whl": (200, {"Content-Type": "application/octet-stream"}, b"x" * 5000),
}


@pytest.fixture
def base() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            status, headers, body = ANSWERS.get(self.path, (404, {}, b""))
            if self.path == "/json/" and self.headers.get("If-None-Match") == '"1"':
                status, body = 304, b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as server:
        yield server.url()


def test_a_json_page_is_read_and_revalidated_with_its_etag(base: str) -> None:
    client = Upstream()
    first = client.page(f"{base}/json/")
    assert (first.status, first.body, first.etag) == (200, b"{}", '"1"')
    assert client.page(f"{base}/json/", first.etag).status == 304
    assert client.page(f"{base}/to-json/").body == b"{}"  # a redirect within http
    assert client.page(f"{base}/missing/").status == 404
    assert client.requests == 4


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("/html/", UpstreamRefused, "not PEP 691 JSON"),
        ("/big/", UpstreamRefused, "larger than 1,000 bytes"),
        ("/to-file/", UpstreamUnavailable, "302"),
        ("/to-ftp/", UpstreamUnavailable, "302"),
        ("/broken/", UpstreamUnavailable, "500"),
    ],
)
def test_hostile_answers_are_refused(base: str, path: str, error: type, message: str) -> None:
    client = Upstream(UpstreamLimits(max_page_bytes=1000))
    with pytest.raises(error, match=message):
        client.page(f"{base}{path}")


def test_urls_that_are_not_http_are_never_opened() -> None:
    with pytest.raises(UpstreamRefused):
        Upstream().page("file:///etc/passwd")
    with pytest.raises(UpstreamRefused):
        Upstream().file("ftp://127.0.0.1/x.whl", io.BytesIO())


def test_a_file_is_hashed_as_it_is_copied_and_bounded(base: str) -> None:
    sink = io.BytesIO()
    digest = Upstream().file(f"{base}/file.whl", sink)
    assert sink.getvalue() == b"x" * 5000
    assert len(digest) == 64
    with pytest.raises(UpstreamRefused, match="larger than"):
        Upstream(UpstreamLimits(max_file_bytes=100)).file(f"{base}/file.whl", io.BytesIO())


def test_no_slot_free_means_unavailable_not_waiting_forever(base: str) -> None:
    client = Upstream(UpstreamLimits(concurrency=1, wait=0))
    client._slots.acquire()  # another request holds the only slot
    with pytest.raises(UpstreamUnavailable, match="too many"):
        client.page(f"{base}/json/")
