"""The view Lambda on moto: the real handler, given the function URL events CloudFront's
``/view/*`` origin group sends on a bucket miss (the URI already the stored key), over a moto
bucket and a real HTTP upstream on loopback; and the views' timer on EventBridge Scheduler."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from skypi.api import viewhandler
from skypi.api.publish import Uploader
from skypi.core.edge import origin_uri
from skypi.core.http import cache_control_for_key
from skypi.core.keys import VIEW_DUE_KEY, view_file_key
from skypi.core.osv import OsvData
from skypi.core.upload import validate_filename, validate_form
from skypi.core.viewedge import decide_view, view_origin_key
from skypi.core.views import parse_policy
from skypi.indexer.service import Indexer
from skypi.indexer.views import Views
from skypi.local.emulator import LambdaContext
from skypi.store.scheduler import REFRESH_EVENT, SCHEDULE_NAME
from skypi.store.upstream import UpstreamLimits
from tests.apigw import http_event
from tests.aws.conftest import Emulated
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.emulated import CREDENTIALS, RequestCounter
from tests.upstream import Clock, StaticUpstream

V1_JSON = "application/vnd.pypi.simple.v1+json"
GROUP = "skypi-views"
CONTEXT = LambdaContext(
    function_name="skypi-view",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:skypi-view",
)


@pytest.fixture
def lam(
    aws: Emulated, upstream: StaticUpstream, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Views, Clock, Any]]:
    """The handler as Lambda runs it (environment, first event builds it), with the views'
    clock the test's, a view ``safe`` with a 7-day cooldown, and the scheduler's group."""
    views, schedule = view_lambda(aws, moto_endpoint, monkeypatch)
    clock = Clock()
    views.clock = clock
    policy = {"upstream": upstream.url, "cooldown-days": 7, "refresh-minutes": 100_000}
    views.save(parse_policy("safe", policy), new=True)
    yield views, clock, schedule
    monkeypatch.setattr(viewhandler, "_built", None)


def view_lambda(
    aws: Emulated, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Views, Callable[[], Any]]:
    """The view Lambda's environment and its first event's build: its views, and a look at
    the one-time schedule it arms in its scheduler group."""
    scheduler = boto3.client("scheduler", endpoint_url=moto_endpoint, **CREDENTIALS)
    group = f"{GROUP}-{aws.resources.bucket}"
    scheduler.create_schedule_group(Name=group)
    monkeypatch.setenv("SKYPI_VIEW_SCHEDULE_GROUP", group)
    monkeypatch.setenv("SKYPI_VIEW_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/sched")
    monkeypatch.setenv("SKYPI_INVALIDATION_QUEUE_URL", aws.resources.invalidation_queue_url)
    monkeypatch.setattr(viewhandler, "_built", None)
    views = viewhandler._build(CONTEXT)[1]
    return views, lambda: scheduler.get_schedule(Name=SCHEDULE_NAME, GroupName=group)


def _call(path: str, method: str = "GET", **headers: str) -> dict[str, Any]:
    return viewhandler.handler(http_event(method, path, headers=headers), CONTEXT)


def _body(answer: dict[str, Any]) -> bytes:
    body = answer.get("body") or ""
    return base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()


def test_a_miss_makes_stores_and_answers_the_page_later_read_from_the_bucket(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    _, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    # the key the view's edge function sends a pip request to (its Python twin)
    key = view_origin_key(decide_view("GET", "/view/safe/simple/demo/", "", V1_JSON, "gzip"))
    assert key == "views/safe/simple/demo/index.json.gz"
    answer = _call(origin_uri(key), accept="text/html")  # the path's representation counts
    assert answer["statusCode"] == 200, answer
    headers = answer["headers"]
    assert headers["content-type"] == V1_JSON
    assert headers["content-encoding"] == "gzip"
    assert headers["cache-control"] == cache_control_for_key(key)
    stored = aws.s3.get_object(Bucket=aws.resources.bucket, Key=key)
    body = _body(answer)
    assert body == stored["Body"].read()  # what the bucket serves the next request
    assert headers["etag"] == stored["ETag"]
    assert stored["ContentType"] == V1_JSON
    assert stored["ContentEncoding"] == "gzip"
    page = json.loads(gzip.decompress(body))
    assert [f["filename"] for f in page["files"]] == [wheel_name("demo", "1.0")]
    for other in ("index.html", "index.v1html", "index.json", "index.html.gz"):
        assert aws.store.head(f"views/safe/simple/demo/{other}") is not None
    asked = len(upstream.requests)
    html = _call("/views/safe/simple/demo/index.v1html")  # stored: no upstream request
    assert html["headers"]["content-type"] == "application/vnd.pypi.simple.v1+html"
    assert wheel_name("demo", "1.0") in _body(html).decode()
    assert len(upstream.requests) == asked


def test_a_file_miss_is_fetched_checked_and_stored_or_sent_to_upstream(
    aws: Emulated, lam: Any, upstream: StaticUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    views, clock, _ = lam
    data = upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    upstream.add_wheel("demo", "2.0", clock.now - timedelta(days=20), served=b"not the bytes")
    name = wheel_name("demo", "1.0")
    answer = _call(f"/views/safe/files/demo/{name}")
    assert answer["statusCode"] == 200, answer
    assert _body(answer) == data
    assert aws.store.get(view_file_key("safe", "demo", name))[1] == data
    mismatch = _call(f"/views/safe/files/demo/{wheel_name('demo', '2.0')}")
    assert mismatch["statusCode"] == 502
    assert "SHA-256" in _body(mismatch).decode()
    assert aws.store.head(view_file_key("safe", "demo", wheel_name("demo", "2.0"))) is None
    upstream.add_wheel("demo", "3.0", clock.now - timedelta(days=10))
    views.refresh("safe", ["demo"])
    monkeypatch.setattr(views, "fill_limit", 10)  # every wheel is past it now
    big = _call(f"/views/safe/files/demo/{wheel_name('demo', '3.0')}")
    assert big["statusCode"] == 307
    assert big["headers"]["location"] == f"{upstream.url[:-7]}files/{wheel_name('demo', '3.0')}"
    assert big["headers"]["cache-control"] == "no-store"
    assert aws.store.head(view_file_key("safe", "demo", wheel_name("demo", "3.0"))) is None
    again = _call(f"/views/safe/files/demo/{name}")  # cached already: answered from storage
    assert again["statusCode"] == 200
    assert _body(again) == data


def test_a_file_past_what_the_function_may_answer_is_sent_to_storage(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    _, clock, _ = lam
    noise = random.Random(26).randbytes(5 * 1024 * 1024)  # does not compress below 4 MB
    data = wheel_bytes("huge", "1.0", payload=noise)
    upstream.add_wheel("huge", "1.0", clock.now - timedelta(days=30), served=data)
    entry = upstream.pages["huge"]["files"][0]
    entry["hashes"]["sha256"], entry["size"] = hashlib.sha256(data).hexdigest(), len(data)
    answer = _call(f"/views/safe/files/huge/{wheel_name('huge', '1.0')}")
    assert answer["statusCode"] == 307, answer
    assert "X-Amz-Signature" in answer["headers"]["location"]
    assert aws.store.get(view_file_key("safe", "huge", wheel_name("huge", "1.0")))[1] == data


@pytest.mark.parametrize(
    "path",
    [
        "/packages/demo/demo-1.0.tar.gz",  # outside the views
        "/views/safe/policy.json",
        "/views/safe/upstream/demo.json",
        "/views/due.json",
        "/views/safe/simple/index.json",  # the served list, not the view's root
        "/views/safe/simple/demo%2Findex.json",  # an encoded slash
        "/views/safe/files/demo/..%2F..%2Fpolicy.json",
        "/views/safe/files/demo/%252e%252e",  # encoded twice
        "/views/safe/simple/Demo/index.json",  # not a normalized name
        "/views/nope/simple/demo/index.json",  # no such view
        "/view/safe@2026-02-30/simple/demo/index.json",  # no such day
        "/views/safe/simple/demo/index.json.gz.gz",
        "/",
    ],
)
def test_what_the_function_does_not_serve_is_404_and_stores_nothing(
    aws: Emulated, lam: Any, upstream: StaticUpstream, path: str
) -> None:
    _, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    before = {o.key for o in aws.store.list("views/")}
    answer = _call(path)
    assert answer["statusCode"] == 404, answer
    assert answer["headers"]["cache-control"] == "no-store"
    assert {o.key for o in aws.store.list("views/")} == before


def test_an_upstream_that_cannot_be_used_is_a_gateway_error_and_nothing_is_stored(
    aws: Emulated, lam: Any, upstream: StaticUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    views, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    upstream.pages["broken"] = {"meta": {"api-version": "1.1"}, "files": "not a list"}
    broken = _call("/views/safe/simple/broken/index.json")
    assert broken["statusCode"] == 502
    assert "cannot be used now" in _body(broken).decode()
    monkeypatch.setattr(views.upstream, "limits", UpstreamLimits(max_page_bytes=10))
    huge = _call("/views/safe/simple/demo/index.json")
    assert huge["statusCode"] == 502
    assert "larger than" in _body(huge).decode()
    upstream.stop()
    down = _call("/views/safe/simple/other/index.json")
    assert down["statusCode"] == 502
    assert not [o.key for o in aws.store.list("views/safe/simple/")]


def test_private_names_and_quarantined_projects_never_come_from_upstream(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    _, clock, _ = lam
    mine = wheel_bytes("mine", "1.0")
    aws.drop(f"packages/mine/{wheel_name('mine', '1.0')}", mine)
    assert aws.poller.drain() >= 1
    upstream.add_wheel("mine", "99.0", clock.now - timedelta(days=30))  # hostile and higher
    answer = _call("/views/safe/simple/mine/index.json")
    assert answer["statusCode"] == 200
    assert [f["filename"] for f in json.loads(_body(answer))["files"]] == [
        wheel_name("mine", "1.0")
    ]
    assert not any("/simple/mine/" in r for r in upstream.requests)
    assert aws.store.head("views/safe/simple/mine/index.json") is None  # never stored
    upstream.add_wheel("bad", "1.0", clock.now - timedelta(days=30))
    upstream.set_status("bad", "quarantined", "malware")
    page = json.loads(_body(_call("/views/safe/simple/bad/index.json")))
    assert page["files"] == []
    assert _call(f"/views/safe/files/bad/{wheel_name('bad', '1.0')}")["statusCode"] == 404


def test_a_private_upload_or_drop_in_takes_over_a_stored_view_page_at_once(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    """A hostile upstream's higher version of a name the view stored; then the name is
    uploaded through the API's classes, or dropped into the bucket: the view's stored page
    (what CloudFront would serve with no code running) is gone at once, and the bucket's
    miss reaches the function, which serves the private page only."""
    views, clock, _ = lam
    for name in ("taken", "dropped"):
        upstream.add_wheel(name, "99.0", clock.now - timedelta(days=30))
        assert _call(f"/views/safe/simple/{name}/index.json")["statusCode"] == 200
        assert aws.store.head(f"views/safe/simple/{name}/index.json") is not None
    assert views.served("safe") == ["dropped", "taken"]
    data, filename = wheel_bytes("taken", "1.0"), wheel_name("taken", "1.0")
    fields = {k: [v] for k, v in upload_form(data, filename, "taken", "1.0").items()}
    form = validate_form(fields)
    uploader = Uploader(aws.store, Indexer(aws.store), max_size=10 * 1024 * 1024)
    uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))
    aws.drop(f"packages/dropped/{wheel_name('dropped', '1.0')}", wheel_bytes("dropped", "1.0"))
    assert aws.poller.drain() >= 1
    for name in ("taken", "dropped"):
        assert not list(aws.store.list(f"views/safe/simple/{name}/"))  # every representation
        page = json.loads(_body(_call(f"/views/safe/simple/{name}/index.json")))
        assert [f["filename"] for f in page["files"]] == [wheel_name(name, "1.0")]
        assert aws.store.head(f"views/safe/simple/{name}/index.json") is None  # never stored
    assert views.served("safe") == []


def test_the_timer_makes_only_due_pages_again_and_arms_itself_for_the_next(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    _, clock, schedule = lam
    start = clock.now
    upstream.add_wheel("demo", "1.0", start - timedelta(days=30))
    upstream.add_wheel("demo", "2.0", start - timedelta(days=6))  # listed in a day
    upstream.add_wheel("calm", "1.0", start - timedelta(days=30))
    for project in ("demo", "calm"):
        assert _call(f"/views/safe/simple/{project}/index.json")["statusCode"] == 200
    listed = json.loads(aws.page("views/safe/simple/demo/index.json"))["files"]
    assert [f["filename"] for f in listed] == [wheel_name("demo", "1.0")]
    armed = schedule()
    due = start - timedelta(days=6) + timedelta(days=7)
    assert armed["ScheduleExpression"] == f"at({due.strftime('%Y-%m-%dT%H:%M:%S')})"
    assert armed["ScheduleExpressionTimezone"] == "UTC"
    assert armed["ActionAfterCompletion"] == "DELETE"
    assert armed["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert json.loads(armed["Target"]["Input"]) == REFRESH_EVENT
    assert armed["Target"]["Arn"] == CONTEXT.invoked_function_arn
    calm = aws.store.head("views/safe/simple/calm/index.json")
    assert calm is not None
    calm_etag = calm.etag
    asked = len(upstream.requests)

    clock.now = due + timedelta(seconds=1)
    assert viewhandler.handler(dict(REFRESH_EVENT), CONTEXT) == {"made": 1}
    listed = json.loads(aws.page("views/safe/simple/demo/index.json"))["files"]
    assert [f["filename"] for f in listed] == [
        wheel_name(n, v) for n, v in [("demo", "1.0"), ("demo", "2.0")]
    ]
    assert aws.store.head("views/safe/simple/calm/index.json").etag == calm_etag  # type: ignore[union-attr]
    assert len(upstream.requests) == asked  # made from the kept upstream page
    refresh = start + timedelta(minutes=100_000)  # the next: calm's revalidation
    assert schedule()["ScheduleExpression"] == f"at({refresh.strftime('%Y-%m-%dT%H:%M:%S')})"
    record = json.loads(aws.page(VIEW_DUE_KEY))
    assert set(record["views"]["safe"]) == {"demo", "calm"}


def test_the_timer_with_nothing_due_makes_nothing(aws: Emulated, lam: Any) -> None:
    assert viewhandler.handler(dict(REFRESH_EVENT), CONTEXT) == {"made": 0}
    assert aws.store.head(VIEW_DUE_KEY) is None  # idle: nothing written, nothing armed


def test_the_view_handler_imports_no_web_framework_or_client() -> None:
    heavy = "{'fastapi', 'starlette', 'mangum', 'skypi.store.s3', 'skypi.indexer.views'}"
    code = f"import sys, skypi.api.viewhandler; print(sorted(set(sys.modules) & {heavy}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_views_are_added_and_explained_on_a_deployed_index(
    aws: Emulated, lam: Any, upstream: StaticUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    from skypi import cli

    _, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    bucket = ["--bucket", aws.resources.bucket]
    assert cli.main(["view", "add", "pub", "--upstream", upstream.url, *bucket]) == 0
    assert aws.store.head("views/pub/policy.json") is not None
    assert _call("/views/pub/simple/demo/index.json")["statusCode"] == 200
    capsys.readouterr()
    assert cli.main(["view", "explain", "pub", "demo", *bucket]) == 0
    assert "listed" in capsys.readouterr().out


class Trickle(BaseHTTPRequestHandler):
    """An upstream that answers a page one byte at a time, each within the read timeout."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", V1_JSON)
        self.send_header("Content-Length", "40")
        self.end_headers()
        for _ in range(40):  # 2 s in all
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:
                return
            time.sleep(0.05)


def test_an_upstream_that_trickles_past_the_budget_is_a_504(
    aws: Emulated, lam: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read comes within the read timeout, the whole page does not come within the
    budget the origin timeout leaves: 504, nothing stored."""
    views, _, _ = lam
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/simple/"
        views.save(parse_policy("slow", {"upstream": url}), new=True)
        monkeypatch.setattr(views.upstream, "limits", UpstreamLimits(budget=0.5))
        answer = _call("/views/slow/simple/demo/index.json")
    finally:
        server.shutdown()
        server.server_close()
    assert answer["statusCode"] == 504, answer
    assert "took longer than 0.5 s" in _body(answer).decode()
    assert not list(aws.store.list("views/slow/simple/"))
    assert aws.store.head("views/slow/upstream/demo.json") is None


def test_the_fetch_budget_follows_the_origin_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKYPI_VIEW_ORIGIN_TIMEOUT", "60")
    assert viewhandler.fetch_budget() == 25.0
    monkeypatch.setenv("SKYPI_VIEW_ORIGIN_TIMEOUT", "not a number")
    assert viewhandler.fetch_budget() == 10.0


def test_a_timer_run_short_of_time_records_what_it_made_and_arms_the_next(
    aws: Emulated, lam: Any, upstream: StaticUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stops making pages while it still has time to record them and arm the next run,
    which is set for the pages left (already due: as soon as the timer allows)."""
    _, clock, schedule = lam
    start = clock.now
    for project in ("one", "two"):
        upstream.add_wheel(project, "1.0", start - timedelta(days=30))
        upstream.add_wheel(project, "2.0", start - timedelta(days=6))
        assert _call(f"/views/safe/simple/{project}/index.json")["statusCode"] == 200
    clock.now = start + timedelta(days=1, seconds=1)  # both due
    left = iter([600.0, 30.0])  # time for one page only
    monkeypatch.setattr(CONTEXT, "get_remaining_time_in_millis", lambda: next(left) * 1000)
    assert viewhandler.handler(dict(REFRESH_EVENT), CONTEXT) == {"made": 1}
    soon = clock.now + timedelta(minutes=1)
    assert schedule()["ScheduleExpression"] == f"at({soon.strftime('%Y-%m-%dT%H:%M:%S')})"
    monkeypatch.setattr(CONTEXT, "get_remaining_time_in_millis", lambda: 600_000)
    assert viewhandler.handler(dict(REFRESH_EVENT), CONTEXT) == {"made": 1}  # the other
    for project in ("one", "two"):
        listed = json.loads(aws.page(f"views/safe/simple/{project}/index.json"))["files"]
        assert len(listed) == 2


def test_a_timer_run_that_dies_leaves_a_timer_behind(
    lam: Any, upstream: StaticUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-time schedule deletes itself once it has run: a run that fails before arming
    the next would leave the due pages with no timer. Each run arms a fallback first."""
    views, clock, schedule = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=6))
    assert _call("/views/safe/simple/demo/index.json")["statusCode"] == 200
    clock.now += timedelta(days=1, seconds=1)

    def dies(view: str, name: str) -> None:
        raise RuntimeError("the run dies here")

    monkeypatch.setattr(views, "_remake", dies)
    with pytest.raises(RuntimeError):
        viewhandler.handler(dict(REFRESH_EVENT), CONTEXT)
    fallback = clock.now + timedelta(minutes=15)
    assert schedule()["ScheduleExpression"] == f"at({fallback.strftime('%Y-%m-%dT%H:%M:%S')})"


def test_a_policy_written_to_the_bucket_remakes_the_views_stored_pages_at_once(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    """However the operator writes a view's policy (``skypi view add --replace --bucket``,
    ``aws s3 cp``), the bucket's event runs the view function, which makes that view's stored
    pages again now, not when each is next due (refresh-minutes is 100,000 here); an event
    for any other key makes nothing."""
    from tests.aws.test_view_cloudfront import s3_event

    _, clock, _ = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    upstream.add_wheel("other", "1.0", clock.now - timedelta(days=30))
    for project in ("demo", "other"):
        assert _call(f"/views/safe/simple/{project}/index.json")["statusCode"] == 200
    page = "views/safe/simple/demo/index.json"
    assert json.loads(aws.store.get(page)[1])["files"]
    denied = {"upstream": upstream.url, "deny": ["demo"], "refresh-minutes": 100_000}
    Views(aws.store).save(parse_policy("safe", denied), new=False)
    asked = len(upstream.requests)
    assert viewhandler.handler(s3_event("packages/x/x-1.0.tar.gz"), CONTEXT) == {"made": 0}
    assert viewhandler.handler(s3_event("views/safe/policy.json"), CONTEXT) == {"made": 2}
    assert aws.store.head(page) is None  # the whole project denied: no page
    assert aws.store.head("views/safe/simple/other/index.json") is not None
    assert len(upstream.requests) == asked  # made from the kept upstream pages


def test_a_name_published_here_has_the_views_cached_files_deleted_when_its_page_is_next_made(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    """A drop-in takes the name over at once (the view's page is deleted); the view's copy of
    upstream's file goes when the timer next makes that page (it is still in the due record),
    with its invalidation queued."""
    _, clock, _ = lam
    upstream.add_wheel("taken", "9.0", clock.now - timedelta(days=30))
    name = wheel_name("taken", "9.0")
    assert _call("/views/safe/simple/taken/index.json")["statusCode"] == 200
    assert _call(f"/views/safe/files/taken/{name}")["statusCode"] == 200
    aws.drop(f"packages/taken/{wheel_name('taken', '1.0')}", wheel_bytes("taken", "1.0"))
    assert aws.poller.drain() >= 1
    assert aws.store.head("views/safe/simple/taken/index.json") is None
    clock.now += timedelta(minutes=100_001)  # past refresh-minutes: the page is due
    assert viewhandler.handler(REFRESH_EVENT, CONTEXT) == {"made": 1}
    assert aws.store.head(view_file_key("safe", "taken", name)) is None
    queued = aws.sqs.receive_message(QueueUrl=aws.resources.invalidation_queue_url)["Messages"]
    assert f"/views/safe/files/taken/{name}" in json.loads(queued[0]["Body"])["paths"]


def test_a_severity_block_is_applied_and_shown_on_the_stored_html_page(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    views, clock, _ = lam
    for version in ("1.0", "2.0"):
        upstream.add_wheel("demo", version, clock.now - timedelta(days=30))
    policy = {"upstream": upstream.url, "cooldown-days": 7, "block-severity": "high"}
    views.save(parse_policy("safe", policy), new=False)
    vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8, critical
    record = {
        "id": "GHSA-2222-3333-4444",
        "summary": "<script>x()</script> in demo",
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["2.0"]}],
    }
    views.import_osv(OsvData.from_records([record]))
    page = json.loads(_body(_call("/views/safe/simple/demo/index.json")))
    assert [f["filename"] for f in page["files"]] == [wheel_name("demo", "1.0")]
    assert [(b["version"], b["reason"]) for b in page["_view"]["blocked"]] == [("2.0", "severity")]
    stored = aws.s3.get_object(Bucket=aws.resources.bucket, Key="views/safe/simple/demo/index.html")
    html = stored["Body"].read().decode()  # what a browser reads from the bucket after
    assert wheel_name("demo", "2.0") not in html.split("<h2>Held back by this view</h2>")[0]
    assert (
        f"<td>{wheel_name('demo', '2.0')}</td><td>2.0</td><td>severity</td>"
        f"<td>GHSA-2222-3333-4444 (critical, {vector} = 9.8; rated critical, at or above high): "
        "&lt;script&gt;x()&lt;/script&gt; in demo</td>"
    ) in html
    assert _call(f"/views/safe/files/demo/{wheel_name('demo', '2.0')}")["statusCode"] == 404


def test_what_a_miss_and_a_timer_run_cost_in_requests(
    aws: Emulated, lam: Any, upstream: StaticUpstream
) -> None:
    """The figures docs/views.md prices (the view Lambda's S3 and upstream requests): a page
    miss, a file miss, a timer run that revalidates an unchanged page, and one that remakes a
    page whose cooldown ended. A read the bucket answers runs no function: not counted."""
    views, clock, _ = lam
    policy = {"upstream": upstream.url, "cooldown-days": 7, "refresh-minutes": 10}
    views.save(parse_policy("safe", policy), new=False)
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    upstream.add_wheel("demo", "2.0", clock.now - timedelta(days=6, minutes=30))
    _call("/views/safe/simple/warm/index.json")  # the OSV data, read once per function copy
    counter = RequestCounter(views.store.client)  # type: ignore[attr-defined]

    def measured(call: Any) -> tuple[Counter[str], int]:
        counter.requests.clear()
        asked = len(upstream.requests)
        call()
        return Counter(counter.calls), len(upstream.requests) - asked

    page, asked = measured(lambda: _call("/views/safe/simple/demo/index.json"))
    assert asked == 1
    assert _tiers(page) == (9, 1, 12), page
    name = wheel_name("demo", "1.0")
    fill, asked = measured(lambda: _call(f"/views/safe/files/demo/{name}"))
    assert asked == 1  # the file itself
    assert _tiers(fill) == (1, 0, 10), fill
    clock.now += timedelta(minutes=11)  # refresh-minutes passed: upstream asked again
    same, asked = measured(lambda: viewhandler.handler(dict(REFRESH_EVENT), CONTEXT))
    assert asked == 1
    assert _tiers(same) == (2, 1, 9), same
    clock.now += timedelta(days=1)  # 2.0's cooldown ended (and refresh-minutes passed again)
    remade, asked = measured(lambda: viewhandler.handler(dict(REFRESH_EVENT), CONTEXT))
    assert asked == 1
    assert _tiers(remade) == (8, 1, 12), remade


def _tiers(counted: Counter[str]) -> tuple[int, int, int]:
    """S3 requests as they are priced: PUT, LIST (the PUT tier too), GET and HEAD."""
    return (
        counted["PutObject"],
        counted["ListObjectsV2"],
        counted["GetObject"] + counted["HeadObject"],
    )
