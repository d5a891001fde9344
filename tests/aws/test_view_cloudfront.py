"""A view through CloudFront as the synthesized template builds it (tests/cloudfront.py): the
``/view/*`` behaviour's own function (its code from the template, under node, reading tokens
from the KeyValueStore), its origin group (the moto bucket, then the view Lambda's real handler
given the function URL event), and the other behaviours as they are. A read the bucket can
answer never reaches the Lambda."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus, urljoin

import pytest

from skypi.api import viewhandler
from skypi.core.keys import view_file_key
from skypi.core.osv import OsvData
from skypi.indexer import invalidator
from skypi.indexer.views import Views
from skypi.local.emulator import CloudFrontEmulation, Poller
from skypi.store.cdn import CloudFrontCdn
from tests.apigw import http_event
from tests.aws.conftest import Emulated
from tests.aws.test_view_lambda import CONTEXT, lam
from tests.cloudfront import Answer, CloudFrontModel, s3_origin
from tests.dists import wheel_bytes, wheel_name
from tests.infra.test_edge_function import mirrored_records
from tests.synth import Synth
from tests.test_edge_vectors import expand_credentials
from tests.test_views import MAL_DEMO
from tests.upstream import StaticUpstream

__all__ = ["lam"]  # the view Lambda's fixture (tests/aws/test_view_lambda.py)
V1_JSON = "application/vnd.pypi.simple.v1+json"
READER = {"authorization": expand_credentials("{basic:reader}"), "accept": V1_JSON}


def _function_url(method: str, uri: str, query: str, headers: Mapping[str, str]) -> Answer:
    """The view Lambda as its function URL runs it: CloudFront's signed request carries the
    URI the function chose, none of the viewer's credentials."""
    answer = viewhandler.handler(http_event(method, uri, query=query), CONTEXT)
    body = answer.get("body") or ""
    data = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
    return Answer(answer["statusCode"], answer.get("headers", {}), data)


@pytest.fixture
def cloudfront(synth: Synth, aws: Emulated) -> CloudFrontModel:
    return distribution(synth, aws)


def distribution(synth: Synth, aws: Emulated) -> CloudFrontModel:
    """The template's distribution in front of the moto bucket and the view Lambda, its
    KeyValueStore holding the edge vectors' tokens (``reader`` reads)."""
    bucket = s3_origin(aws.s3, aws.resources.bucket)
    return CloudFrontModel(
        synth.template,
        {"bucket": bucket, "viewbucket": bucket, "view": _function_url},
        mirrored_records(),
    )


def test_a_view_page_and_file_are_made_on_a_miss_then_read_from_the_bucket(
    cloudfront: CloudFrontModel, lam: Any, upstream: StaticUpstream, aws: Emulated
) -> None:
    _, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    moved = cloudfront.request("GET", "/view/safe/simple/Demo/", headers=READER)
    assert (moved.status, moved.headers["location"]) == (301, "/view/safe/simple/demo/")
    assert cloudfront.asked == []  # the function answered
    page = cloudfront.request("GET", "/view/safe/simple/demo/", headers=READER)
    assert (page.status, page.origin) == (200, "view")
    assert cloudfront.asked == ["viewbucket", "view"]  # the bucket missed: failover
    [listed] = json.loads(page.body)["files"]
    assert listed["filename"] == wheel_name("demo", "1.0")
    cloudfront.asked.clear()
    again = cloudfront.request("GET", "/view/safe/simple/demo/", headers=READER)
    assert (again.status, again.origin, again.body) == (200, "viewbucket", page.body)
    assert cloudfront.asked == ["viewbucket"]  # no Lambda on a hit
    link = urljoin("/view/safe/simple/demo/", listed["url"]).split("#")[0]
    for origin in ("view", "viewbucket"):  # fetched and kept, then the bucket's
        file = cloudfront.request("GET", link, headers=READER)
        assert (file.status, file.origin) == (200, origin)
        assert file.body == upstream.files[f"/files/{wheel_name('demo', '1.0')}"]
    assert aws.store.head(view_file_key("safe", "demo", wheel_name("demo", "1.0"))) is not None


def test_a_private_drop_in_takes_over_at_once_what_the_bucket_served_from_upstream(
    cloudfront: CloudFrontModel, lam: Any, upstream: StaticUpstream, aws: Emulated
) -> None:
    """The hostile higher version a view stored (a hit: no code runs), then the name dropped
    into the bucket: the next read misses the bucket and the Lambda serves the private page."""
    _, clock, _ = lam
    upstream.add_wheel("taken", "99.0", clock.now - timedelta(days=30))
    assert cloudfront.request("GET", "/view/safe/simple/taken/", headers=READER).origin == "view"
    hit = cloudfront.request("GET", "/view/safe/simple/taken/", headers=READER)
    assert (hit.status, hit.origin) == (200, "viewbucket")
    assert [f["filename"] for f in json.loads(hit.body)["files"]] == [wheel_name("taken", "99.0")]
    aws.drop(f"packages/taken/{wheel_name('taken', '1.0')}", wheel_bytes("taken", "1.0"))
    assert aws.poller.drain() >= 1
    cloudfront.asked.clear()
    page = cloudfront.request("GET", "/view/safe/simple/taken/", headers=READER)
    assert (page.status, page.origin) == (200, "view")
    assert cloudfront.asked == ["viewbucket", "view"]  # the stored page is gone: failover
    assert [f["filename"] for f in json.loads(page.body)["files"]] == [wheel_name("taken", "1.0")]


def test_what_a_view_makes_for_each_request_always_reaches_the_lambda(
    cloudfront: CloudFrontModel, lam: Any, upstream: StaticUpstream
) -> None:
    _, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    for _ in range(2):
        root = cloudfront.request("GET", "/view/safe/simple/", headers=READER)
        assert (root.status, root.origin) == (200, "view")
        pinned = cloudfront.request("GET", "/view/safe@2020-06-01/simple/demo/", headers=READER)
        assert (pinned.status, pinned.origin) == (200, "view")
    assert cloudfront.asked == ["viewbucket", "view"] * 4


def test_the_edge_refuses_before_any_origin(cloudfront: CloudFrontModel, lam: Any) -> None:
    """A private index's view wants its read token at the edge (the Lambda never sees one);
    a write is refused by CloudFront itself (the behaviour allows GET, HEAD and OPTIONS)."""
    anonymous = cloudfront.request("GET", "/view/safe/simple/demo/")
    assert anonymous.status == 401
    assert cloudfront.request("POST", "/view/safe/simple/demo/", headers=READER).status == 403
    refused = cloudfront.request("OPTIONS", "/view/safe/simple/demo/", headers=READER)
    assert refused.status == 405
    assert cloudfront.request("GET", "/view/Bad/simple/demo/", headers=READER).status == 404
    assert cloudfront.asked == []


def s3_event(*keys: str) -> dict[str, Any]:
    """What the bucket's notification sends the view function when ``keys`` are written (S3
    URL-encodes each key, a space as ``+``)."""
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "bucket"}, "object": {"key": quote_plus(key)}},
            }
            for key in keys
        ]
    }


def test_a_cached_file_named_malicious_later_is_deleted_and_leaves_the_edge(
    cloudfront: CloudFrontModel,
    lam: Any,
    upstream: StaticUpstream,
    aws: Emulated,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cached through CloudFront (then a bucket hit), then the operator imports OSV data that
    names it MAL-: the bucket's event runs the view function, which makes the page again,
    deletes the cached copy and queues the invalidation of the exact URI CloudFront cached it
    under, which the invalidator sends. Its URL (a lock file's) then misses the bucket, and the
    view function answers 404 saying why, without asking upstream."""
    _, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    name = wheel_name("demo", "1.0")
    page = cloudfront.request("GET", "/view/safe/simple/demo/", headers=READER)
    link = urljoin("/view/safe/simple/demo/", json.loads(page.body)["files"][0]["url"])
    link = link.split("#")[0]
    uris: list[str] = []  # what CloudFront asks the bucket for: its cache key
    bucket = cloudfront.origins["viewbucket"]

    def watched(method: str, uri: str, query: str, headers: Mapping[str, str]) -> Answer:
        uris.append(uri)
        return bucket(method, uri, query, headers)

    cloudfront.origins = {**cloudfront.origins, "viewbucket": watched}
    assert cloudfront.request("GET", link, headers=READER).origin == "view"
    assert cloudfront.request("GET", link, headers=READER).origin == "viewbucket"
    cached = view_file_key("safe", "demo", name)
    assert aws.store.head(cached) is not None
    Views(aws.store).import_osv(OsvData.from_records([MAL_DEMO]))  # skypi view osv --bucket
    assert viewhandler.handler(s3_event("osv/PyPI.json"), CONTEXT) == {"made": 1}
    assert aws.store.head(cached) is None
    edge = CloudFrontEmulation({"E1"}, takes=0)
    monkeypatch.setattr(invalidator, "_cdn", CloudFrontCdn("E1", edge))
    queue = (aws.resources.invalidation_queue_url, aws.resources.invalidation_queue_arn)
    assert Poller(aws.sqs, aws.resources, invalidator.handler, wait_seconds=0, queue=queue).drain()
    assert uris[-1] in edge.invalidated("E1")  # the cache key CloudFront held it under
    asked = len(upstream.requests)
    cloudfront.asked.clear()
    gone = cloudfront.request("GET", link, headers=READER)
    assert (gone.status, cloudfront.asked) == (404, ["viewbucket", "view"])
    assert f"does not serve {name} (malware: MAL-2026-11" in gone.body.decode()
    assert upstream.requests[asked:] == []  # the kept page was enough; the file is not fetched
    assert aws.store.head(cached) is None
