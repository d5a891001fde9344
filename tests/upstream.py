"""A static PEP 691 index on a loopback port, for views to read: JSON pages written by the test
(upload times, yanks, statuses, a file whose bytes do not match its hash), ETags and 304s, and a
count of the requests it answered."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.dists import metadata_text, wheel_bytes, wheel_name
from tests.loopback import Loopback

V1_JSON = "application/vnd.pypi.simple.v1+json"


class Clock:
    """The time the views see (``now``, from ``start``, or this second), moved by the test."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class StaticUpstream:
    """Projects (name -> page document) and files (path -> bytes) served over HTTP."""

    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    server: Loopback | None = None
    # Paths whose next request gets half its body, then the rest once ``release`` is set (a
    # transfer that stalls part-way, for as long as the test wants): each stalls once.
    stall: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    hanging: set[str] = field(default_factory=set)  # project pages that never answer
    _released: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.url()}/simple/"

    def add_wheel(
        self,
        name: str,
        version: str,
        uploaded: datetime | None,
        *,
        yanked: str | bool = False,
        requires: tuple[str, ...] = (),
        served: bytes | None = None,
    ) -> bytes:
        """A wheel on ``name``'s page (``served``: other bytes than the page's hash says)."""
        data = wheel_bytes(name, version, requires=requires)
        filename = wheel_name(name, version)
        self.files[f"/files/{filename}"] = served if served is not None else data
        meta = metadata_text(name, version, requires=requires).encode()
        self.files[f"/files/{filename}.metadata"] = meta
        page = self.pages.setdefault(
            name, {"meta": {"api-version": "1.4"}, "name": name, "files": []}
        )
        entry: dict[str, Any] = {
            "filename": filename,
            "url": f"../../files/{filename}",
            "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
            "core-metadata": {"sha256": hashlib.sha256(meta).hexdigest()},
            "size": len(data),
            "yanked": yanked,
        }
        if uploaded is not None:
            entry["upload-time"] = uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        page["files"].append(entry)
        return data

    def set_status(self, name: str, status: str, reason: str = "") -> None:
        self.pages[name]["project-status"] = {"status": status, "reason": reason}

    def start(self) -> StaticUpstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                upstream.requests.append(self.path)
                name = self.path.removeprefix("/simple/").removesuffix("/")
                if name in upstream.hanging:  # until the upstream stops (a minute at most)
                    upstream._released.wait(60)
                if self.path.startswith("/simple/") and name in upstream.pages:
                    body = json.dumps(upstream.pages[name]).encode()
                    etag = f'"{hashlib.md5(body).hexdigest()}"'
                    if self.headers.get("If-None-Match") == etag:
                        self.send_response(304)
                        self.send_header("ETag", etag)
                        self.end_headers()
                        return
                    self._send(200, body, V1_JSON, etag)
                elif self.path in upstream.stall:
                    upstream.stall.discard(self.path)
                    self._stalled(upstream.files[self.path])
                elif self.path in upstream.files:
                    self._send(200, upstream.files[self.path], "application/octet-stream")
                else:
                    self._send(404, b"Not Found\n", "text/plain")

            def _stalled(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                upstream.release.wait(30)
                self.wfile.write(body[len(body) // 2 :])

            def _send(self, status: int, body: bytes, kind: str, etag: str = "") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                if etag:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.server = Loopback(Handler).start()
        return self

    def stop(self) -> None:
        self.release.set()  # no handler left waiting
        self._released.set()
        if self.server is not None:
            self.server.stop()
