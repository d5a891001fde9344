"""``skypi publish FILE...``: upload distributions of any size.

The API hands out presigned, create-only requests, and the bytes go straight to storage:
- small files in one PUT bound to their SHA-256;
- big ones in 64 MiB+ parts, each bound to its own SHA-256 (S3 checks it; a bucket with
  Object Lock takes no part without one), with a progress bar.

The upload's state is kept in ``~/.cache/skypi/uploads``, so an interrupted upload resumes
with only the parts still missing. The API then verifies what landed and indexes it, or
deletes it and says why.

An index that keeps files on its own disk (``skypi serve``) answers that it takes uploads
only through ``/legacy/``; the file then goes there, as twine would send it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

from skypi.client.answers import detail as _message
from skypi.core.digests import CHUNK, Digests
from skypi.core.direct import (
    Accepted,
    MultipartUpload,
    SingleUpload,
    UploadStatus,
    read_complete,
    read_plan,
)
from skypi.core.errors import SkypiError
from skypi.core.filenames import DistFilename, parse_filename
from skypi.core.metadata import read_file_metadata
from skypi.core.parts import MULTIPART_FROM, part_size

Progress = Callable[[int], object]
Answer = TypeVar("Answer")


class PublishError(Exception):
    """Publishing cannot go on at all (authentication, the index unreachable)."""


@dataclass(frozen=True)
class Result:
    filename: str
    # published, exists, accepted (stored; the index lists it once it has hashed it), or
    # refused (by this tool, the index or storage: ``message`` says why)
    status: UploadStatus | Literal["refused"]
    message: str = ""


def file_sha256(path: Path) -> str:
    """The SHA-256 of a local file, read in 1 MiB chunks."""
    return file_digests(path)[0]


def file_digests(path: Path, part: int | None = None) -> tuple[str, list[str]]:
    """The SHA-256 of a local file and, given a part size, of each of its parts: one pass."""
    whole = Digests()
    parts: list[str] = []
    with path.open("rb") as fh:
        while True:
            piece = Digests()
            while (part is None or piece.size < part) and (
                chunk := fh.read(CHUNK if part is None else min(CHUNK, part - piece.size))
            ):
                whole.update(chunk)
                piece.update(chunk)
            if part is None or not piece.size:
                return whole.hexdigests()["sha256"], parts
            parts.append(piece.hexdigests()["sha256"])


def _chunks(path: Path, start: int, length: int, progress: Progress | None) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            if progress:
                progress(len(chunk))
            yield chunk


class PublishClient:
    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        http: httpx.Client | None = None,
        state_dir: Path | None = None,
        progress: Callable[[str, int], Progress] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # Only the index's API gets the token: presigned storage requests must go without it.
        self.auth: Any = httpx.BasicAuth("__token__", token) if token else httpx.USE_CLIENT_DEFAULT
        self.http = http or httpx.Client(timeout=httpx.Timeout(60, read=600))
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        self.state_dir = state_dir or cache / "skypi" / "uploads"
        self.progress = progress

    def _api(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = self.http.post(f"{self.url}{path}", json=body, auth=self.auth)
        except httpx.TransportError as exc:
            raise PublishError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code in {401, 403}:
            raise PublishError(f"{response.status_code}: {_message(response)}")
        return response

    def _state_file(self, sha256: str) -> Path:
        return self.state_dir / f"{sha256}.json"

    def _bar(self, filename: str, total: int) -> Progress | None:
        return self.progress(filename, total) if self.progress else None

    def publish(self, path: Path) -> Result:
        size = path.stat().st_size
        try:  # a file the index would refuse is refused here, before any byte is sent
            _local_metadata(path, parse_filename(path.name), size)
        except SkypiError as exc:
            return Result(path.name, "refused", str(exc))
        part = part_size(size) if size >= MULTIPART_FROM else None
        sha256, part_sha256 = file_digests(path, part)
        declared: dict[str, Any] = {"filename": path.name, "size": size, "sha256": sha256}
        if part is not None:
            declared |= {"part_size": part, "part_sha256": part_sha256}
        state_file = self._state_file(sha256)
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        resume = (
            {"resume_upload_id": state["upload_id"], "marker": state["marker"]}
            if state.get("url") == self.url and state.get("upload_id")
            else {}
        )
        response = self._api("/api/uploads", declared | resume)
        if response.status_code == 404 and resume:  # the upload expired: start over
            state_file.unlink(missing_ok=True)
            response = self._api("/api/uploads", declared)
        if response.status_code == 501:
            return self.upload_legacy(path, size, sha256)
        if response.status_code != 200:
            return Result(path.name, "refused", _message(response))
        plan = _read(read_plan, response)
        if not isinstance(plan, SingleUpload | MultipartUpload):
            return Result(path.name, plan.status, "already published with these bytes")
        body: dict[str, Any] = declared | {"marker": plan.marker}
        if isinstance(plan, SingleUpload):
            request = plan.request
            bar = self._bar(path.name, size)
            put = self.http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=_chunks(path, 0, size, bar),
            )
            if put.status_code not in {200, 412}:  # 412: stored already; complete will say
                return Result(path.name, "refused", f"storage answered {put.status_code}")
        else:
            body |= self._multipart(path, size, sha256, part_sha256, plan, state_file)
        response = self._api("/api/uploads/complete", body)
        state_file.unlink(missing_ok=True)
        if response.status_code != 200:
            return Result(path.name, "refused", _message(response))
        answer = _read(read_complete, response)
        detail = answer.detail if isinstance(answer, Accepted) else ""
        return Result(path.name, answer.status, detail)

    def _multipart(
        self,
        path: Path,
        size: int,
        sha256: str,
        part_sha256: list[str],
        plan: MultipartUpload,
        state_file: Path,
    ) -> dict[str, Any]:
        part_size = plan.part_size
        done = {p.number: p.etag for p in plan.done}
        state = {
            "url": self.url,
            "upload_id": plan.upload_id,
            "marker": plan.marker,
            "sha256": sha256,
            "size": size,
        }
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state))
        bar = self._bar(path.name, size)
        if bar and done:
            bar(sum(min(part_size, size - (n - 1) * part_size) for n in done))
        for part in plan.parts:
            number = part.number
            start = (number - 1) * part_size
            length = min(part_size, size - start)
            content = b"".join(_chunks(path, start, length, bar))
            put = self.http.request(part.method, part.url, headers=part.headers, content=content)
            put.raise_for_status()
            done[number] = put.headers["etag"]
        return {
            "upload_id": plan.upload_id,
            "parts": [
                {"number": n, "etag": e, "sha256": part_sha256[n - 1]}
                for n, e in sorted(done.items())
            ],
        }

    def upload_legacy(self, path: Path, size: int, sha256: str) -> Result:
        """The upload twine makes, for an index that stores files on its own disk."""
        try:
            dist = parse_filename(path.name)
            meta = _local_metadata(path, dist, size)
        except SkypiError as exc:
            return Result(path.name, "refused", str(exc))
        fields = {
            ":action": "file_upload",
            "protocol_version": "1",
            "metadata_version": meta.metadata_version,
            "name": meta.name,
            "version": str(meta.version),
            "filetype": "bdist_wheel" if dist.kind == "wheel" else "sdist",
            "pyversion": "py3" if dist.kind == "wheel" else "source",
            "sha256_digest": sha256,
        }
        if meta.requires_python:
            fields["requires_python"] = meta.requires_python
        with path.open("rb") as fh:
            try:
                response = self.http.post(
                    f"{self.url}/legacy/",
                    data=fields,
                    auth=self.auth,
                    files={"content": (path.name, fh, "application/octet-stream")},
                )
            except httpx.TransportError as exc:
                raise PublishError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code in {401, 403}:
            raise PublishError(f"{response.status_code}: {_message(response)}")
        if response.status_code != 200:
            return Result(path.name, "refused", _message(response))
        return Result(path.name, UploadStatus.PUBLISHED, "through /legacy/")


def _read(reader: Callable[[Any], Answer], response: httpx.Response) -> Answer:
    """The index's answer as the model ``reader`` reads (:mod:`skypi.core.direct`); an answer
    that is none stops publishing (an index of another version, or no skypi at all)."""
    try:
        return reader(response.json())
    except ValueError as exc:  # not JSON, or pydantic's ValidationError
        raise PublishError(
            f"{response.request.url} answered what this skypi cannot read: {exc}"
        ) from None


def _local_metadata(path: Path, dist: DistFilename, size: int) -> Any:
    with path.open("rb") as fh:
        return read_file_metadata(dist, fh, size)
