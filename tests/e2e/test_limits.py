"""Limits that hold however a request is framed, against a running ``skypi serve``: a chunked
body is counted as it streams, a token's scope is checked before the body is read, request
heads are bounded, and clients that stall are disconnected. Raw sockets, because the clients
people use do not send hostile framing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, run_cli, start_server

pytestmark = pytest.mark.e2e
MiB = 1024 * 1024
BOUNDARY = b"skypi-test-boundary"


UPLOAD_TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with a 1 MiB upload limit and a 1 s client timeout; its ``token`` reads."""
    tmp = tmp_path_factory.mktemp("limits")
    folder = tmp / "packages"
    folder.mkdir()
    token = run_cli("token", "create", str(folder), "--scope", "read").stdout.strip()
    UPLOAD_TOKEN["token"] = run_cli("token", "create", str(folder)).stdout.strip()
    srv = start_server(
        folder,
        tmp / "server.log",
        "--max-upload-size",
        "1M",
        "--client-timeout",
        "1",
        token=token,
    )
    yield srv
    srv.stop()


def _connect(server: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes or goes quiet for 10 s."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and len(data.split(b"\r\n\r\n", 1)[1]) >= _length(data):
                break
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _form_start() -> bytes:
    fields = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": "big",
        "version": "1.0",
        "filetype": "bdist_wheel",
        "pyversion": "py3",
        "sha256_digest": "0" * 64,
    }
    parts = b"".join(
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="' + k.encode() + b'"'
        b"\r\n\r\n" + v.encode() + b"\r\n"
        for k, v in fields.items()
    )
    return (
        parts + b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="content"; '
        b'filename="big-1.0-py3-none-any.whl"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )


def test_a_chunked_upload_over_the_limit_is_refused_while_it_streams(limited: Server) -> None:
    """No Content-Length to refuse up front: the server counts while reading, refuses once
    past the limit (plus room for the form's text fields, 16 MiB), and reads no further."""
    total = 100 * MiB
    head = (
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n"
        b"Authorization: Basic " + _basic(UPLOAD_TOKEN["token"]) + b"\r\n\r\n"
    )
    rss_before = _rss_kib(limited.process.pid)
    sock = _connect(limited)
    progress = {"sent": 0}
    block = b"\0" * MiB

    def send() -> None:
        try:
            sock.sendall(head)
            first = _form_start()
            sock.sendall(b"%x\r\n%s\r\n" % (len(first), first))
            while progress["sent"] < total:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
                progress["sent"] += len(block)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server stopped reading and closed: what this test wants

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    response, answered_at = b"", -1
    try:
        response = sock.recv(65536)
        answered_at = progress["sent"]
        response += _read_response(sock)
    except (TimeoutError, ConnectionResetError):
        pass
    sender.join(30)
    sock.close()
    rss_after = _rss_kib(limited.process.pid)
    assert response.startswith(b"HTTP/1.1 400"), response[:300]
    assert b"File too large. Limit for this index is 1 MiB" in response
    # refused once past 1 MiB + 16 MiB of form fields, long before the 100 MiB were sent
    assert 0 <= answered_at < 40 * MiB, answered_at
    assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)  # KiB
    assert not list(limited.folder.rglob("*.whl"))


def _basic(token: str) -> bytes:
    import base64

    return base64.b64encode(f"__token__:{token}".encode())


def test_a_read_token_is_refused_before_the_body_is_sent(limited: Server) -> None:
    sock = _connect(limited)
    sock.sendall(
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(100 * MiB).encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n"
        b"Authorization: Basic " + _basic(limited.token) + b"\r\n\r\n"
    )
    response = _read_response(sock)  # not one byte of the body sent
    sock.close()
    assert response.startswith(b"HTTP/1.1 403"), response
    assert b"isn't allowed to upload" in response


def test_no_token_is_refused_before_the_body_too(limited: Server) -> None:
    sock = _connect(limited)
    sock.sendall(
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Length: " + str(100 * MiB).encode() + b"\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n\r\n"
    )
    response = _read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 401"), response


@pytest.mark.parametrize("where", ["one header", "many headers", "the URL"])
def test_an_oversize_request_head_is_refused(limited: Server, where: str) -> None:
    big = 256 * 1024
    if where == "one header":
        head = b"GET /simple/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * big + b"\r\n\r\n"
    elif where == "many headers":
        head = (
            b"GET /simple/ HTTP/1.1\r\nHost: x\r\n" + b"X-A: aaaaaaaa\r\n" * (big // 14) + b"\r\n"
        )
    else:
        head = b"GET /simple/?" + b"a" * big + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    sock = _connect(limited)
    with contextlib.suppress(OSError):  # closed after the refusal, before all was sent
        sock.sendall(head)
    response = _read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 431"), response[:200]
    assert b"Request headers too large: at most 65,536 bytes" in response


def _head_of(size: int, prefix: bytes = b"") -> bytes:
    """A GET whose head (from its request line to its blank line) is ``size`` bytes."""
    start = prefix + b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: "
    return start + b"a" * (size - len(start) + len(prefix) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize(
    ("size", "prefix", "writes"),
    [
        (65_537, b"", 1),  # one byte over, in one write: parsed whole before being counted
        (75 * 1024, b"", 1),
        (75 * 1024, b"\r\n\r\n", 1),  # blank lines before a request do not end its head
        (75 * 1024, b"", 2),  # split at its blank line: the end of a head spans two reads
    ],
)
def test_a_head_over_the_limit_is_refused_however_it_is_written(
    limited: Server, size: int, prefix: bytes, writes: int
) -> None:
    head = _head_of(size, prefix)
    assert len(head) - len(prefix) == size
    sock = _connect(limited)
    with contextlib.suppress(OSError):
        if writes == 1:
            sock.sendall(head)
        else:
            sock.sendall(head[:-2])
            time.sleep(0.05)  # pacing only: the assertion does not depend on it
            sock.sendall(head[-2:])
    response = _read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 431"), response[:200]


def test_a_head_at_the_limit_is_served(limited: Server) -> None:
    sock = _connect(limited)
    sock.sendall(_head_of(65_536, b"\r\n"))
    response = _read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 200"), response[:200]


def test_an_ordinary_head_is_served(limited: Server) -> None:
    sock = _connect(limited)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Some: " + b"a" * 8000 + b"\r\n\r\n")
    response = _read_response(sock)
    sock.close()
    assert response.startswith(b"HTTP/1.1 200"), response


def _closed_within(sock: socket.socket, trickle: bytes, seconds: float) -> tuple[bool, bytes]:
    """Send ``trickle`` a byte every 0.2 s; True when the server closes within ``seconds``."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    received = b""
    for byte in trickle:
        if time.monotonic() > deadline:
            return False, received
        try:
            sock.send(bytes([byte]))
        except OSError:
            return True, received
        try:
            chunk = sock.recv(65536)
            if not chunk:
                return True, received
            received += chunk
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, received
    return False, received


def test_a_slow_header_client_is_disconnected(limited: Server) -> None:
    sock = _connect(limited)
    sock.sendall(b"GET /simple/ HTTP/1.1\r\nHost: x\r\n")
    closed, received = _closed_within(sock, b"X-Slow: " + b"a" * 200, seconds=10)
    sock.close()
    assert closed, "a client sending its headers a byte at a time was never disconnected"
    assert received.startswith(b"HTTP/1.1 408"), received


def test_a_slow_body_client_is_disconnected(limited: Server) -> None:
    sock = _connect(limited)
    sock.sendall(
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n"
        b"Authorization: Basic " + _basic(UPLOAD_TOKEN["token"]) + b"\r\n\r\n--"
    )
    sock.settimeout(10)
    try:
        closed = sock.recv(65536) == b""  # the body stops after two bytes: closed, no answer
    except TimeoutError:
        closed = False
    except ConnectionResetError:
        closed = True
    sock.close()
    assert closed, "a client that stopped sending its body was never disconnected"


def test_a_body_trickled_a_byte_at_a_time_is_disconnected(limited: Server) -> None:
    """Each byte comes well within the 1 s pause allowed, so only a deadline for the whole
    body (1 s, plus 1 s per 500 bytes) ends it: 10 s of trickle is far past it."""
    sock = _connect(limited)
    sock.sendall(
        b"POST /legacy/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
        b"Content-Type: multipart/form-data; boundary=" + BOUNDARY + b"\r\n"
        b"Authorization: Basic " + _basic(UPLOAD_TOKEN["token"]) + b"\r\n\r\n--"
    )
    closed, _ = _closed_within(sock, b"a" * 200, seconds=10)
    sock.close()
    assert closed, "a client trickling its body a byte at a time was never disconnected"


def test_an_idle_connection_is_closed(limited: Server) -> None:
    sock = _connect(limited)
    try:
        assert sock.recv(1) == b""  # closed, with nothing sent, well before 10 s
    finally:
        sock.close()
