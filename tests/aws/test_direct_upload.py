"""Direct uploads (``skypi publish``'s server side) over S3 (moto): presigned single and
multipart uploads, resuming, and what a tampered upload leaves behind (nothing)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import httpx
import pytest

from skypi.api import direct
from skypi.api.direct import Declared, DirectUploader
from skypi.core.errors import UploadRejected
from skypi.core.pages import ProjectPage
from skypi.indexer.service import Indexer
from skypi.store.base import Part
from skypi.store.local import LocalStore
from skypi.store.s3 import S3Store
from tests.dists import wheel_bytes, wheel_name
from tests.emulated import s3_store

MiB = 1024 * 1024


@pytest.fixture
def s3(moto_endpoint: str) -> S3Store:
    return s3_store(moto_endpoint)


@pytest.fixture
def uploader(s3: S3Store) -> DirectUploader:
    return DirectUploader(s3, Indexer(s3), max_size=1024**3)


def _wheel(version: str, payload: int = 0) -> tuple[str, bytes]:
    data = wheel_bytes("big", version, payload=random.Random(version).randbytes(payload))
    return wheel_name("big", version), data


def _declared(filename: str, data: bytes) -> Declared:
    return Declared(filename, len(data), hashlib.sha256(data).hexdigest())


def _put(request: dict[str, object], body: bytes) -> httpx.Response:
    """The presigned request, sent as given, except that the body sets its own length (a
    tampering client would; moto checks no signature, S3 would refuse it)."""
    headers = {k: v for k, v in request["headers"].items() if k != "content-length"}  # type: ignore[attr-defined]
    return httpx.request(str(request["method"]), str(request["url"]), headers=headers, content=body)


def _listed(s3: S3Store) -> dict[str, str]:
    try:
        page = ProjectPage.from_json_bytes(s3.get("simple/big/index.json")[1])
    except KeyError:
        return {}
    return {f.filename: f.sha256 for f in page.files}


def test_single_put_then_complete_publishes(uploader: DirectUploader, s3: S3Store) -> None:
    filename, data = _wheel("1.0")
    plan = uploader.plan(_declared(filename, data))
    assert plan["mode"] == "single"
    assert "x-amz-checksum-sha256" in plan["request"]["headers"]
    assert _put(plan["request"], data).status_code == 200
    result = uploader.complete(_declared(filename, data), plan["marker"])
    assert result["status"] == "published"
    assert _listed(s3) == {filename: hashlib.sha256(data).hexdigest()}
    assert uploader.plan(_declared(filename, data))["status"] == "exists"
    with pytest.raises(UploadRejected, match="already exists"):
        uploader.plan(_declared(filename, data + b"x"))


def test_multipart_upload_resumes_with_the_missing_parts(
    uploader: DirectUploader, s3: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct, "MIN_PART", 5 * MiB)
    monkeypatch.setattr(direct, "MULTIPART_FROM", 5 * MiB)
    filename, data = _wheel("2.0", payload=12 * MiB)
    declared = _declared(filename, data)
    plan = uploader.plan(declared)
    assert plan["mode"] == "multipart"
    size = plan["part_size"]
    count = -(-len(data) // size)
    assert count >= 3
    assert [p["number"] for p in plan["parts"]] == list(range(1, count + 1))
    first = plan["parts"][0]
    etag = _put(first, data[:size]).headers["etag"]  # ... and then the connection drops
    again = uploader.plan(declared, resume=plan["upload_id"], marker=plan["marker"])
    assert [p["number"] for p in again["parts"]] == list(range(2, count + 1))
    assert again["done"] == [{"number": 1, "etag": etag, "size": size}]
    parts = [Part(1, etag)]
    for part in again["parts"]:
        start = (part["number"] - 1) * size
        parts.append(Part(part["number"], _put(part, data[start : start + size]).headers["etag"]))
    result = uploader.complete(declared, plan["marker"], plan["upload_id"], parts)
    assert result["status"] == "published"
    assert s3.get(f"packages/big/{filename}")[1] == data
    assert _listed(s3) == {filename: declared.sha256}


@pytest.mark.parametrize("lie", ["sha256", "size", "metadata"])
def test_a_tampered_upload_leaves_nothing(uploader: DirectUploader, s3: S3Store, lie: str) -> None:
    filename, data = _wheel("3.0")
    declared = _declared(filename, data)
    sent = data
    if lie == "sha256":
        sent = data[:-1] + bytes([data[-1] ^ 1])  # the bytes differ from the declared digest
        declared = Declared(filename, len(sent), declared.sha256)
    elif lie == "size":
        declared = Declared(filename, len(data) - 7, declared.sha256)
    else:
        _, sent = _wheel("3.1")  # a wheel of another version under this filename
        declared = _declared(filename, sent)
    plan = uploader.plan(declared)
    _put(plan["request"], sent)  # moto keeps it: it checks no checksum
    with pytest.raises(UploadRejected, match="refused"):
        uploader.complete(declared, plan["marker"])
    assert s3.head(f"packages/big/{filename}") is None
    assert s3.head(f"packages/big/{filename}.metadata") is None
    assert _listed(s3) == {}


def test_complete_never_judges_a_file_another_upload_stored(
    uploader: DirectUploader, s3: S3Store
) -> None:
    filename, data = _wheel("4.0")
    s3.put(f"packages/big/{filename}", data)  # dropped in by someone else, not yet indexed
    plan = uploader.plan(_declared(filename, b"other bytes"))
    with pytest.raises(UploadRejected) as refused:
        uploader.complete(_declared(filename, b"other bytes"), plan["marker"])
    assert refused.value.status == 409
    assert s3.get(f"packages/big/{filename}")[1] == data


def test_a_folder_index_points_to_legacy(tmp_path: Path) -> None:
    """(After the checks that need no bytes: a file already published is still "exists".)"""
    store = LocalStore(tmp_path / "packages")
    filename, data = _wheel("5.0")
    with pytest.raises(UploadRejected, match="/legacy/") as refused:
        DirectUploader(store, Indexer(store), 1024).plan(_declared(filename, data))
    assert refused.value.status == 501
