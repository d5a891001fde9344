"""Direct uploads (``skypi publish``'s server side) over S3 (moto): presigned single and
multipart uploads, resuming, and what a tampered upload leaves behind (nothing)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
from pathlib import Path

import httpx
import pytest

from skypi.api import direct
from skypi.api.direct import Declared, DirectUploader
from skypi.core.errors import Conflict, NotSupported, UploadRejected
from skypi.core.keys import gzip_key, html_twins, page_html_key, page_json_key
from skypi.core.pages import ProjectPage
from skypi.indexer.service import Indexer, Landed
from skypi.store.base import Part
from skypi.store.local import LocalStore
from skypi.store.s3 import S3Store
from tests.dists import poisoned, wheel_bytes, wheel_name
from tests.emulated import s3_store
from tests.test_write_path_staged import Hooked

MiB = 1024 * 1024
CHECKSUM = "x-amz-checksum-sha256"


@pytest.fixture
def s3(moto_endpoint: str) -> S3Store:
    return s3_store(moto_endpoint)


@pytest.fixture
def uploader(s3: S3Store) -> DirectUploader:
    return DirectUploader(s3, Indexer(s3), max_size=1024**3)


def _wheel(version: str, payload: int = 0) -> tuple[str, bytes]:
    data = wheel_bytes("big", version, payload=random.Random(version).randbytes(payload))
    return wheel_name("big", version), data


def _declared(filename: str, data: bytes, part: int | None = None) -> Declared:
    ranges = range(0, len(data), part) if part else ()
    parts = tuple(hashlib.sha256(data[i : i + (part or 0)]).hexdigest() for i in ranges)
    return Declared(filename, len(data), hashlib.sha256(data).hexdigest(), part, parts)


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
    plan = uploader.plan(_declared(filename, data)).wire()
    assert plan["mode"] == "single"
    assert "x-amz-checksum-sha256" in plan["request"]["headers"]
    assert _put(plan["request"], data).status_code == 200
    result = uploader.complete(_declared(filename, data), plan["marker"]).wire()
    assert result["status"] == "published"
    assert _listed(s3) == {filename: hashlib.sha256(data).hexdigest()}
    assert uploader.plan(_declared(filename, data)).wire()["status"] == "exists"
    with pytest.raises(UploadRejected, match="already exists"):
        uploader.plan(_declared(filename, data + b"x"))


def test_complete_after_the_indexer_listed_this_upload_says_published(
    uploader: DirectUploader, s3: S3Store
) -> None:
    """On AWS the object's S3 event reaches the indexer through SQS, which may list the file
    before the client calls complete: that upload is published, not an "exists" failure.
    Another upload's identical file is still "exists"."""
    filename, data = _wheel("1.5")
    plan = uploader.plan(_declared(filename, data)).wire()
    assert _put(plan["request"], data).status_code == 200
    key = f"packages/big/{filename}"
    Indexer(s3).apply([Landed(key, hashlib.sha256(data).hexdigest())])  # the indexer, first
    assert _listed(s3) == {filename: hashlib.sha256(data).hexdigest()}
    result = uploader.complete(_declared(filename, data), plan["marker"]).wire()
    assert (result["status"], result["filename"]) == ("published", filename)
    assert (
        uploader.complete(_declared(filename, data), "another-upload").wire()["status"] == "exists"
    )


def _planned_and_put(uploader: DirectUploader, filename: str, data: bytes) -> str:
    """A direct upload's plan and its single PUT, sent: the marker to complete it with."""
    plan = uploader.plan(_declared(filename, data)).wire()
    assert _put(plan["request"], data).status_code == 200
    return str(plan["marker"])


def _pages_listing(s3: S3Store, filename: str) -> dict[str, bool]:
    """Whether each stored variant of the project's page (what a reader is served, by its
    Accept and Accept-Encoding) lists ``filename``."""
    pages = [page_json_key("big"), *html_twins(page_html_key("big"))]
    found = {key: s3.get(key)[1] for key in pages}
    found |= {gzip_key(key): gzip.decompress(s3.get(gzip_key(key))[1]) for key in pages}
    return {key: filename.encode() in body for key, body in found.items()}


def test_complete_after_the_indexer_listed_this_upload_answers_once_every_page_lists_it(
    uploader: DirectUploader, s3: S3Store
) -> None:
    """The object's event reached the indexer first (its own Lambda, its own page writer):
    it has swapped the JSON page and written the HTML twins, and is about to write the JSON
    page's gzip variant, the one a client taking gzip is served, when the client calls
    complete. complete answers "published" only once every variant of the page lists the
    file: it writes what follows the page itself instead of answering while the indexer is
    part-way (``skypi doctor`` against ``skypi dev`` read the gzip variant without the file
    just after the answer)."""
    first, first_data = _wheel("1.5")
    marker = _planned_and_put(uploader, first, first_data)
    assert uploader.complete(_declared(first, first_data), marker).wire()["status"] == "published"
    filename, data = _wheel("1.6")
    marker = _planned_and_put(uploader, filename, data)
    answered: list[tuple[str, dict[str, bool]]] = []

    def complete() -> None:  # the client's call, while the indexer is part-way
        answer = uploader.complete(_declared(filename, data), marker).wire()
        answered.append((answer["status"], _pages_listing(s3, filename)))

    hooked = Hooked(s3)
    hooked.pause("put", lambda key, **_: key == gzip_key(page_json_key("big")), complete)
    Indexer(hooked).apply([Landed(f"packages/big/{filename}")])  # type: ignore[arg-type]
    assert hooked.fired == ["put"]
    [(status, listing)] = answered
    assert status == "published"
    assert listing == dict.fromkeys(listing, True)
    assert _pages_listing(s3, filename) == dict.fromkeys(listing, True)


def test_multipart_upload_resumes_with_the_missing_parts(
    uploader: DirectUploader, s3: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct, "MULTIPART_FROM", 5 * MiB)
    filename, data = _wheel("2.0", payload=12 * MiB)
    declared = _declared(filename, data, part=5 * MiB)
    plan = uploader.plan(declared).wire()
    assert plan["mode"] == "multipart"
    size = plan["part_size"]
    assert size == 5 * MiB
    count = -(-len(data) // size)
    assert count >= 3
    assert [p["number"] for p in plan["parts"]] == list(range(1, count + 1))
    first = plan["parts"][0]
    etag = _put(first, data[:size]).headers["etag"]  # ... and then the connection drops
    again = uploader.plan(declared, resume=plan["upload_id"], marker=plan["marker"]).wire()
    assert [p["number"] for p in again["parts"]] == list(range(2, count + 1))
    assert [(p["number"], p["etag"], p["size"]) for p in again["done"]] == [(1, etag, size)]
    parts = [Part(1, etag, sha256=declared.part_sha256[0])]
    for part in again["parts"]:
        start = (part["number"] - 1) * size
        digest = declared.part_sha256[part["number"] - 1]
        assert part["headers"][CHECKSUM] == base64.b64encode(bytes.fromhex(digest)).decode()
        sent = _put(part, data[start : start + size])
        parts.append(Part(part["number"], sent.headers["etag"], sha256=digest))
    result = uploader.complete(declared, plan["marker"], plan["upload_id"], parts).wire()
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
    plan = uploader.plan(declared).wire()
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
    plan = uploader.plan(_declared(filename, b"other bytes")).wire()
    with pytest.raises(Conflict):
        uploader.complete(_declared(filename, b"other bytes"), plan["marker"])
    assert s3.get(f"packages/big/{filename}")[1] == data


def test_a_folder_index_points_to_legacy(tmp_path: Path) -> None:
    """(After the checks that need no bytes: a file already published is still "exists".)"""
    store = LocalStore(tmp_path / "packages")
    filename, data = _wheel("5.0")
    with pytest.raises(NotSupported, match="/legacy/"):
        DirectUploader(store, Indexer(store), 1024).plan(_declared(filename, data))


class ObjectLockedS3(httpx.BaseTransport):
    """S3's rules for a bucket with Object Lock, which moto does not apply, in front of moto:
    a PUT (an object or a part) without ``Content-MD5`` or an ``x-amz-checksum-*`` header is
    refused (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html),
    and one whose checksum does not match its bytes is refused too (BadDigest)."""

    def __init__(self, api: httpx.BaseTransport) -> None:
        self.api = api
        self.s3 = httpx.HTTPTransport()
        self.puts: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "testserver":
            return self.api.handle_request(request)
        if request.method == "PUT":
            self.puts.append(request)
            body = request.read()
            checksum = request.headers.get(CHECKSUM)
            if checksum is None and "content-md5" not in request.headers:
                return httpx.Response(
                    400,
                    text="<Error><Code>InvalidRequest</Code><Message>Content-MD5 OR "
                    "x-amz-checksum- HTTP header is required for Put Part requests with Object "
                    "Lock parameters</Message></Error>",
                )
            if (
                checksum is not None
                and checksum != base64.b64encode(hashlib.sha256(body).digest()).decode()
            ):
                return httpx.Response(400, text="<Error><Code>BadDigest</Code></Error>")
        return self.s3.handle_request(request)


def test_skypi_publish_sends_every_part_with_its_checksum(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client (``skypi publish``), the API and S3 with Object Lock on, end to end."""
    from fastapi.testclient import TestClient

    from skypi.api.app import create_app
    from skypi.api.settings import Settings
    from skypi.client import publish
    from tests.emulated import s3_client

    client = s3_client(moto_endpoint)
    bucket = f"skypi-locked-{random.Random().getrandbits(32):08x}"
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    store = S3Store(bucket, client)
    monkeypatch.setattr(direct, "MULTIPART_FROM", 5 * MiB)
    monkeypatch.setattr(publish, "MULTIPART_FROM", 5 * MiB)
    monkeypatch.setattr(publish, "part_size", lambda size: 5 * MiB)
    filename, data = _wheel("6.0", payload=12 * MiB)
    (tmp_path / filename).write_bytes(data)
    transport = ObjectLockedS3(
        TestClient(create_app(store, Settings(upload_auth=False)))._transport
    )
    publisher = publish.PublishClient(
        "http://testserver", None, http=httpx.Client(transport=transport), state_dir=tmp_path
    )
    result = publisher.publish(tmp_path / filename)
    assert (result.status, result.message) == ("published", "")
    parts = [r for r in transport.puts if "partNumber" in r.url.params]
    assert len(parts) == -(-len(data) // (5 * MiB)) >= 3
    for request in parts:
        signed = request.url.params["X-Amz-SignedHeaders"].split(";")
        assert {"content-length", CHECKSUM} <= set(signed)
    assert store.get(f"packages/big/{filename}")[1] == data
    assert _listed(store) == {filename: hashlib.sha256(data).hexdigest()}


def test_a_409_at_completion_says_to_start_again_not_that_another_upload_won() -> None:
    """S3 answers CompleteMultipartUpload with If-None-Match 412 when the key exists, and 409
    ConditionalRequestConflict when a concurrent write got in the way, after which the upload
    must be started anew (S3 API reference: CompleteMultipartUpload, If-None-Match)."""
    from botocore.stub import Stubber

    from tests.emulated import s3_client

    client = s3_client("http://127.0.0.1:9")  # never reached: the stubber answers
    store = S3Store("skypi-stubbed", client)
    filename, data = _wheel("7.0")
    key = f"packages/big/{filename}"
    with Stubber(client) as stub:
        stub.add_client_error("get_object", "NoSuchKey", http_status_code=404)
        stub.add_client_error(
            "complete_multipart_upload", "ConditionalRequestConflict", http_status_code=409
        )
        stub.add_response(
            "abort_multipart_upload", {}, {"Bucket": store.bucket, "Key": key, "UploadId": "u-1"}
        )
        with pytest.raises(Conflict, match="start a new upload") as refused:
            DirectUploader(store, Indexer(store), 1024**3).complete(
                _declared(filename, data), "marker", "u-1", [Part(1, '"etag"')]
            )
        stub.assert_no_pending_responses()
    assert "another upload" not in str(refused.value)


def test_a_multipart_upload_too_big_to_hash_in_the_request_is_left_to_the_indexer(
    s3: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind API Gateway a request has 30 s: completing an upload that cannot be hashed in
    that time answers "accepted" (S3 checked each part against its declared SHA-256) and the
    indexer, woken by the object's event, hashes and lists it."""
    monkeypatch.setattr(direct, "MULTIPART_FROM", 5 * MiB)
    uploader = DirectUploader(s3, Indexer(s3), max_size=1024**3, hash_seconds=0.0)
    filename, data = _wheel("8.0", payload=6 * MiB)
    declared = _declared(filename, data, part=5 * MiB)
    plan = uploader.plan(declared).wire()
    parts = []
    for part in plan["parts"]:
        start = (part["number"] - 1) * 5 * MiB
        sent = _put(part, data[start : start + 5 * MiB])
        parts.append(
            Part(
                part["number"],
                sent.headers["etag"],
                sha256=declared.part_sha256[part["number"] - 1],
            )
        )
    result = uploader.complete(declared, plan["marker"], plan["upload_id"], parts).wire()
    assert result["status"] == "accepted"
    assert "lists it within minutes" in result["detail"]
    assert s3.get(f"packages/big/{filename}")[1] == data  # kept, not deleted
    Indexer(s3).apply([Landed(f"packages/big/{filename}")])  # what its S3 event brings
    assert _listed(s3) == {filename: declared.sha256}


def test_on_lambda_a_file_above_the_indexers_hashing_ceiling_is_refused_before_upload(
    s3: S3Store,
) -> None:
    """105 s of the indexer's 120 s at the 85 MB/s S3 documents per connection: a bigger file
    could never be hashed and listed, so it is refused before any byte is sent."""
    from skypi.api.handler import lambda_settings

    ceiling = lambda_settings(s3.bucket).max_direct_upload_size
    assert ceiling == 105 * 85_000_000
    uploader = DirectUploader(s3, Indexer(s3), ceiling)
    big = Declared(wheel_name("big", "9.0"), ceiling + 1, "0" * 64)
    with pytest.raises(UploadRejected, match="8,925,000,000 bytes"):
        uploader.plan(big)
    assert "up to 8.9 GB" in lambda_settings(s3.bucket).large_upload_hint


@pytest.mark.parametrize("case", sorted(poisoned("big", "5.0")))
def test_a_poisoned_upload_is_refused_with_its_reason_and_deleted(
    uploader: DirectUploader, s3: S3Store, case: str
) -> None:
    """A hand-made archive that once crashed (or hung) the reader: at completion, a refusal
    (400) that says why, and the stored object is gone."""
    filename, data = poisoned("big", "5.0")[case]
    declared = _declared(filename, data)
    plan = uploader.plan(declared).wire()
    assert _put(plan["request"], data).status_code == 200
    with pytest.raises(UploadRejected, match="refused: Invalid distribution file"):
        uploader.complete(declared, plan["marker"])
    assert s3.head(f"packages/big/{filename}") is None
    assert s3.head(f"packages/big/{filename}.metadata") is None
    assert _listed(s3) == {}
