"""The direct upload's answers (``skypi publish``): one set of models, which the API sends and
the client reads, whose JSON is the bytes the API sent before they were models."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import ValidationError

from skypi.client.publish import PublishError, _read
from skypi.core.direct import (
    Accepted,
    Finished,
    MultipartUpload,
    PartRequest,
    SingleUpload,
    StorageRequest,
    StoredPart,
    Transfer,
    UploadStatus,
    read_complete,
    read_plan,
)

PUT = StorageRequest(method="PUT", url="https://s3/k?sig", headers={"x-amz-checksum-sha256": "q"})
PART = PartRequest(number=2, method="PUT", url="https://s3/k?part=2", headers={})
ANSWERS = [
    (
        Finished(status=UploadStatus.EXISTS, filename="a-1.0.tar.gz", url="../../p/a-1.0.tar.gz"),
        '{"status":"exists","filename":"a-1.0.tar.gz","url":"../../p/a-1.0.tar.gz"}',
    ),
    (
        SingleUpload(key="packages/a/a-1.0.tar.gz", marker="m1", request=PUT),
        '{"status":"upload","mode":"single","key":"packages/a/a-1.0.tar.gz","marker":"m1",'
        '"request":{"method":"PUT","url":"https://s3/k?sig",'
        '"headers":{"x-amz-checksum-sha256":"q"}}}',
    ),
    (
        MultipartUpload(
            key="k",
            marker="m2",
            upload_id="u",
            part_size=67108864,
            parts=[PART],
            done=[StoredPart(number=1, etag='"e1"', size=67108864)],
        ),
        '{"status":"upload","mode":"multipart","key":"k","marker":"m2","upload_id":"u",'
        '"part_size":67108864,"parts":[{"number":2,"method":"PUT","url":"https://s3/k?part=2",'
        '"headers":{}}],"done":[{"number":1,"etag":"\\"e1\\"","size":67108864,"sha256":null}]}',
    ),
    (
        Accepted(filename="a-1.0.tar.gz", url="u", detail="Stored; hashed within minutes."),
        '{"status":"accepted","filename":"a-1.0.tar.gz","url":"u",'
        '"detail":"Stored; hashed within minutes."}',
    ),
]


@pytest.mark.parametrize(("answer", "sent"), ANSWERS, ids=lambda a: type(a).__name__)
def test_each_answer_is_sent_as_before_and_read_back_as_itself(answer: object, sent: str) -> None:
    assert isinstance(answer, Finished | SingleUpload | MultipartUpload | Accepted)
    assert json.dumps(answer.wire(), separators=(",", ":")) == sent
    read = read_complete if isinstance(answer, Accepted) else read_plan
    assert read(json.loads(sent)) == answer


def test_the_answers_are_told_apart_by_their_status_and_mode() -> None:
    assert isinstance(read_plan(ANSWERS[1][0].wire()), SingleUpload)
    multipart = read_plan(ANSWERS[2][0].wire())
    assert isinstance(multipart, MultipartUpload)
    assert multipart.mode is Transfer.MULTIPART
    published = read_complete({"status": "published", "filename": "f", "url": "u"})
    assert isinstance(published, Finished)
    assert published.status is UploadStatus.PUBLISHED


@pytest.mark.parametrize(
    "body",
    [
        {"status": "upload", "mode": "carrier-pigeon", "key": "k", "marker": "m"},
        {"status": "uploaded", "filename": "f", "url": "u"},
        {"status": "upload", "mode": "single", "key": "k", "marker": "m"},  # no request
        ["not", "an", "answer"],
    ],
)
def test_an_answer_that_is_none_is_refused_by_the_client(body: object) -> None:
    with pytest.raises(ValidationError):
        read_plan(body)
    response = httpx.Response(
        200, json=body, request=httpx.Request("POST", "https://index.example/api/uploads")
    )
    with pytest.raises(PublishError, match="answered what this skypi cannot read"):
        _read(read_plan, response)
