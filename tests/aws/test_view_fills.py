"""Files too big (or too slow) to fetch while CloudFront waits, on AWS: the view Lambda answers
a redirect to upstream at once and sends itself the file to fill (an asynchronous invocation,
played by tests/asynclambda.py), whose run streams it into the bucket by a multipart upload,
checked against upstream's SHA-256 before it completes; then CloudFront's next request is a
hit of the bucket. Through the CloudFront model of the synthesized template, on moto."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import timedelta
from typing import Any
from urllib.parse import unquote, urljoin

import pytest

from infra.views import FUNCTION_TIMEOUT, ORIGIN_READ_TIMEOUT
from skypi.api import viewhandler
from skypi.core.keys import view_file_key
from skypi.indexer.views import MAX_EVENT_FIELD, WAIT_BUDGET, FillRequest
from skypi.store import sinks
from skypi.store.selfinvoke import ASYNC_PAYLOAD_LIMIT, RESEND_SECONDS, PayloadTooLarge, SelfInvoke
from skypi.store.upstream import UpstreamLimits
from tests.asynclambda import AsyncLambda
from tests.aws.conftest import Emulated
from tests.aws.test_view_cloudfront import READER, cloudfront
from tests.aws.test_view_lambda import CONTEXT, _body, _call, lam
from tests.cloudfront import CloudFrontModel
from tests.dists import wheel_bytes, wheel_name
from tests.upstream import StaticUpstream

__all__ = ["cloudfront", "lam"]  # fixtures of the view Lambda's tests
MiB = 1024 * 1024


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> AsyncLambda:
    return AsyncLambda().install(monkeypatch)


def _deliver(invocations: AsyncLambda) -> list[Any]:
    return invocations.deliver(lambda event: viewhandler.handler(event, CONTEXT))


def _no_uploads_left(aws: Emulated) -> bool:
    return not aws.s3.list_multipart_uploads(Bucket=aws.resources.bucket).get("Uploads")


def test_a_big_file_is_redirected_then_filled_by_the_function_then_a_hit_of_the_bucket(
    cloudfront: CloudFrontModel,
    lam: Any,
    upstream: StaticUpstream,
    aws: Emulated,
    invocations: AsyncLambda,
) -> None:
    views, clock, _ = lam
    views.fill_limit = 100  # bytes: the test's wheel is past it
    data = upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    page = cloudfront.request("GET", "/view/safe/simple/demo/", headers=READER)
    link = urljoin("/view/safe/simple/demo/", json.loads(page.body)["files"][0]["url"])
    link = link.split("#")[0]
    for _ in range(2):  # a second request while it is filled: no second invocation
        first = cloudfront.request("GET", link, headers=READER)
        assert (first.status, first.origin) == (307, "view")
        assert first.headers["location"] == f"{upstream.url[:-7]}files/{name}"
        assert first.headers["cache-control"] == "no-store"  # CloudFront keeps no redirect
    [sent] = invocations.queued
    assert sent.invocation_type == "Event"  # asynchronous: the viewer does not wait for it
    assert unquote(sent.function) == CONTEXT.invoked_function_arn  # itself
    assert sent.payload == {
        "skypi": "view-fill", "view": "safe", "project": "demo", "filename": name, "pin": None
    }  # fmt: skip
    assert upstream.requests.count(f"/files/{name}") == 0  # nothing fetched while it waited
    assert _deliver(invocations) == [{"filled": True}]
    cloudfront.asked.clear()
    hit = cloudfront.request("GET", link, headers=READER)
    assert (hit.status, hit.origin, hit.body) == (200, "viewbucket", data)
    assert cloudfront.asked == ["viewbucket"]  # no Lambda, no upstream
    assert upstream.requests.count(f"/files/{name}") == 1
    # Lambda may deliver an event twice: the second run finds the file stored
    invocations.queued.append(invocations.delivered[0])
    assert _deliver(invocations) == [{"filled": False}]
    assert upstream.requests.count(f"/files/{name}") == 1
    assert _no_uploads_left(aws)


def test_a_fill_streams_a_file_of_several_parts_into_the_bucket(
    lam: Any, upstream: StaticUpstream, aws: Emulated, invocations: AsyncLambda
) -> None:
    views, clock, _ = lam
    views.fill_limit = MiB
    noise = random.Random(26).randbytes(sinks.PART_BYTES + MiB)  # two parts
    data = wheel_bytes("huge", "1.0", payload=noise)
    upstream.add_wheel("huge", "1.0", clock.now - timedelta(days=30), served=data)
    entry = upstream.pages["huge"]["files"][0]
    entry["hashes"]["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    name = wheel_name("huge", "1.0")
    assert _call(f"/views/safe/files/huge/{name}")["statusCode"] == 307
    assert _deliver(invocations) == [{"filled": True}]
    key = view_file_key("safe", "huge", name)
    head = aws.s3.head_object(Bucket=aws.resources.bucket, Key=key)
    assert head["ETag"].endswith('-2"')  # a multipart upload of two parts
    assert head["ContentLength"] == len(data)
    assert aws.store.get(key)[1] == data
    stored = _call(f"/views/safe/files/huge/{name}")  # past 4 MB: a presigned URL
    assert stored["statusCode"] == 307
    assert "X-Amz-Signature" in stored["headers"]["location"]
    assert _no_uploads_left(aws)


def test_a_lying_upstream_leaves_no_object_and_no_upload(
    lam: Any, upstream: StaticUpstream, aws: Emulated, invocations: AsyncLambda
) -> None:
    views, clock, _ = lam
    views.fill_limit = 100
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30), served=b"x" * 1000)
    name = wheel_name("demo", "1.0")
    assert _call(f"/views/safe/files/demo/{name}")["statusCode"] == 307
    assert _deliver(invocations) == [{"filled": False}]  # logged; not raised (no retries)
    assert aws.store.head(view_file_key("safe", "demo", name)) is None
    assert _no_uploads_left(aws)  # aborted: the bytes never became an object
    again = _call(f"/views/safe/files/demo/{name}")  # the view lists it no more: mismatch
    assert again["statusCode"] == 404, again
    assert b"mismatch" in _body(again), again


def test_a_transfer_that_stalls_past_the_budget_is_redirected_never_a_504(
    lam: Any,
    upstream: StaticUpstream,
    aws: Emulated,
    invocations: AsyncLambda,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    views, clock, _ = lam
    data = upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    upstream.stall.add(f"/files/{name}")  # under the fill limit, but it stalls half-way
    monkeypatch.setattr(views.upstream, "limits", UpstreamLimits(timeout=2.0, budget=5.0))
    answer = _call(f"/views/safe/files/demo/{name}")
    assert answer["statusCode"] == 307, _body(answer)
    assert _deliver(invocations) == [{"filled": True}]
    assert aws.store.get(view_file_key("safe", "demo", name))[1] == data


@pytest.mark.parametrize(
    "event",
    [
        {"skypi": "view-fill"},
        {"skypi": "view-fill", "view": "safe", "project": "demo", "filename": 3},
        {"skypi": "view-fill", "view": "safe", "project": "demo", "filename": "x" * 600},
        {"skypi": "view-fill", "view": "../x", "project": "demo", "filename": "a.whl"},
        {"skypi": "view-fill", "view": "safe", "project": "demo", "filename": "../../policy.json"},
        {"skypi": "view-fill", "view": "safe", "project": "nope", "filename": "nope-1.0.tar.gz"},
    ],
)
def test_a_fill_event_that_names_no_listed_file_fills_nothing(
    lam: Any, aws: Emulated, event: dict[str, Any]
) -> None:
    before = [o.key for o in aws.store.list("views/safe/files/")]
    assert viewhandler.handler(event, CONTEXT) == {"filled": False}
    assert [o.key for o in aws.store.list("views/safe/files/")] == before
    assert _no_uploads_left(aws)


def test_the_aws_rules_a_background_fill_relies_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # Lambda API reference, "Invoke": an asynchronous invocation's payload is at most 1 MB
    assert ASYNC_PAYLOAD_LIMIT == 1024 * 1024
    wide = "x" * MAX_EVENT_FIELD
    widest = FillRequest(wide, wide, wide, wide).to_event()
    assert len(json.dumps(widest)) < ASYNC_PAYLOAD_LIMIT
    with pytest.raises(PayloadTooLarge):
        SelfInvoke("arn:aws:lambda:us-east-1:123456789012:function:f")({"x": "y" * 1024 * 1024})
    # Lambda quotas: 15 minutes a run; a fill sent is over by the time it could be sent again
    assert FUNCTION_TIMEOUT.to_seconds() == 900 == RESEND_SECONDS
    assert viewhandler.FILL_MARGIN < 900
    # S3 multipart upload limits: parts of 5 MiB to 5 GiB (the last smaller), 10,000 at most
    assert sinks.MIN_PART_BYTES == 5 * MiB <= sinks.PART_BYTES <= 5 * 1024 * MiB
    assert sinks.MAX_PARTS == 10_000
    assert UpstreamLimits().max_file_bytes <= sinks.PART_BYTES * sinks.MAX_PARTS
    with pytest.raises(ValueError, match="at least"):
        sinks.MultipartSink(None, "k", part_bytes=MiB)  # type: ignore[arg-type]
    # CloudFront waits 60 s for the function (origin response timeout): a fetch a client waits
    # for gets 25 s of them, in the function and in skypi serve alike
    assert ORIGIN_READ_TIMEOUT.to_seconds() == 60
    monkeypatch.setenv(viewhandler.ORIGIN_TIMEOUT_VARIABLE, str(ORIGIN_READ_TIMEOUT.to_seconds()))
    assert viewhandler.fetch_budget() == WAIT_BUDGET == 25.0
