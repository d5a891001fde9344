"""What each function does on AWS, driven through its real Lambda handler on moto: the paths
the IAM tier records. Each scenario sets up outside any role, then acts as one function."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from skypi import cli
from skypi.api import handler as api_handler
from skypi.api import viewhandler
from skypi.client import publish
from skypi.core.keys import OSV_KEY, QUARANTINE_RECORD_VALUE, quarantine_record_key
from skypi.core.osv import OsvData
from skypi.core.publishers import GitHubPublisher
from skypi.core.tokens import TokenRecord, new_token
from skypi.core.views import parse_policy
from skypi.edge_tokens import handler as sync_handler
from skypi.indexer.admin import Admin
from skypi.indexer.changes import Landed
from skypi.indexer.namespaces import NamespaceAdmin
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer
from skypi.indexer.views import Views
from skypi.local.emulator import LambdaContext
from skypi.store.dynamo_publishers import DynamoPublisherRepository
from skypi.store.s3 import S3Store
from tests.apigw import http_event, upload_event
from tests.asynclambda import AsyncLambda
from tests.conftest import basic
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.iam.conftest import AUDIENCE, Stack
from tests.iam.template import ACCOUNT, PARTITION, REGION
from tests.oidc import github_claims
from tests.upstream import StaticUpstream

if TYPE_CHECKING:
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

API_URL = "https://api.skypi.test"
ATTESTED = Path(__file__).parents[1] / "assets" / "pep740" / "pypi_attestations-0.0.19.tar.gz"
MiB = 1024 * 1024


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = api_handler.handler(event, LambdaContext(function_name="skypi-api"))
    return response


def _body(response: dict[str, Any]) -> bytes:
    body = response.get("body", "")
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def _token(stack: Stack, *scopes: str) -> str:
    token = new_token()
    stack.aws.tokens.add(TokenRecord.create(token, name="iam", scopes=set(scopes), projects=None))
    return token


class LambdaTransport(httpx.BaseTransport):
    """``skypi publish`` against the API Lambda's handler (as API Gateway would invoke it) and
    the presigned storage requests it is given against moto."""

    def __init__(self) -> None:
        self.storage = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not str(request.url).startswith(API_URL):
            return self.storage.handle_request(request)
        event = http_event(
            request.method,
            request.url.path,
            headers=dict(request.headers),
            body=request.read() or None,
            query=request.url.query.decode(),
        )
        response = _invoke(event)
        return httpx.Response(
            response["statusCode"], headers=response.get("headers", {}), content=_body(response)
        )


def _publish(stack: Stack, project: str, payload: int) -> None:
    filename = wheel_name(project, "1.0")
    data = wheel_bytes(project, "1.0", payload=random.Random(project).randbytes(payload))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / filename
        path.write_bytes(data)
        client = publish.PublishClient(
            API_URL,
            _token(stack, "upload"),
            http=httpx.Client(transport=LambdaTransport()),
            state_dir=Path(folder),
        )
        with stack.recorder.acting("api"):
            result = client.publish(path)
    assert (result.status, result.message) == ("published", ""), result
    assert stack.aws.store.get(f"packages/{project}/{filename}")[1] == data


def _upload(stack: Stack, project: str, version: str = "1.0") -> None:
    data = wheel_bytes(project, version)
    authorization = basic(_token(stack, "upload"))["Authorization"]
    event = upload_event(data, wheel_name(project, version), project, version, authorization)
    with stack.recorder.acting("api"):
        response = _invoke(event)
    assert response["statusCode"] == 200, _body(response)


def _admin(stack: Stack, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    headers = {**basic(_token(stack, "admin")), "content-type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    with stack.recorder.acting("api"):
        response = _invoke(http_event(method, path, headers=headers, body=data))
    assert response["statusCode"] == 200, _body(response)


def _index(stack: Stack) -> None:
    with stack.recorder.acting("indexer"):
        assert stack.aws.poller.drain() >= 1


# -- the indexer ------------------------------------------------------------------------------


def drop_in(stack: Stack) -> None:
    stack.aws.drop(
        f"packages/dropped/{wheel_name('dropped', '1.0')}", wheel_bytes("dropped", "1.0")
    )
    _index(stack)


def removal(stack: Stack) -> None:
    key = f"packages/removed/{wheel_name('removed', '1.0')}"
    stack.aws.drop(key, wheel_bytes("removed", "1.0"))
    stack.aws.poller.drain()
    stack.aws.s3.delete_object(Bucket=stack.deployment.bucket, Key=key)  # `aws s3 rm`
    _index(stack)


def overwrite_restore(stack: Stack) -> None:
    key = f"packages/restored/{wheel_name('restored', '1.0')}"
    original = wheel_bytes("restored", "1.0")
    stack.aws.drop(key, original)
    stack.aws.poller.drain()
    stack.aws.drop(key, wheel_bytes("restored", "1.0", payload=b"an impostor"))
    _index(stack)
    assert stack.aws.store.get(key)[1] == original


def reindex(stack: Stack) -> None:
    """``skypi reindex``'s whole-index rebuild, as the indexer's role would run it."""
    stack.aws.drop(
        f"packages/rebuilt/{wheel_name('rebuilt', '1.0')}", wheel_bytes("rebuilt", "1.0")
    )
    store = S3Store.from_environment()  # a client made (and watched) like the function's
    with stack.recorder.acting("indexer"):
        report = Rebuilder(Indexer(store)).run(check=False)
    assert report is not None


# -- the API ----------------------------------------------------------------------------------


def twine_upload(stack: Stack) -> None:
    _upload(stack, "twined")


def publish_single(stack: Stack) -> None:
    _publish(stack, "single", payload=0)


def publish_multipart(stack: Stack) -> None:
    mp = pytest.MonkeyPatch()
    with mp.context() as patch:
        from skypi.api import direct

        patch.setattr(direct, "MULTIPART_FROM", 5 * MiB)
        patch.setattr(publish, "MULTIPART_FROM", 5 * MiB)
        patch.setattr(publish, "part_size", lambda size: 5 * MiB)
        _publish(stack, "parted", payload=11 * MiB)


def publish_resumed(stack: Stack) -> None:
    """An interrupted multipart upload asked for again: the API lists the parts S3 holds."""
    filename = wheel_name("resumed", "1.0")
    data = wheel_bytes("resumed", "1.0", payload=random.Random(7).randbytes(11 * MiB))
    ranges = range(0, len(data), 5 * MiB)
    body = {
        "filename": filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "part_size": 5 * MiB,
        "part_sha256": [hashlib.sha256(data[i : i + 5 * MiB]).hexdigest() for i in ranges],
    }
    http = httpx.Client(transport=LambdaTransport(), auth=("__token__", _token(stack, "upload")))
    mp = pytest.MonkeyPatch()
    with mp.context() as patch, stack.recorder.acting("api"):
        from skypi.api import direct

        patch.setattr(direct, "MULTIPART_FROM", 5 * MiB)
        plan = http.post(f"{API_URL}/api/uploads", json=body).json()
        first = plan["parts"][0]
        headers = {k: v for k, v in first["headers"].items() if k != "content-length"}
        sent = httpx.put(first["url"], headers=headers, content=data[: 5 * MiB])
        assert sent.status_code == 200, sent.text  # ... and then the connection drops
        resume = {"resume_upload_id": plan["upload_id"], "marker": plan["marker"]}
        again = http.post(f"{API_URL}/api/uploads", json={**body, **resume}).json()
    assert [p["number"] for p in again["done"]] == [1], again


def attested_upload(stack: Stack) -> None:
    """A Trusted Publishing upload with a real PEP 740 attestation, then its provenance read."""
    assert stack.issuer is not None
    attestation = json.loads((ATTESTED.parent / f"{ATTESTED.name}.publish.attestation").read_text())
    repository = "trailofbits/pypi-attestations"
    publisher = GitHubPublisher.create(
        repository, workflow="release.yml", projects={"pypi-attestations"}, issuer=stack.issuer.url
    )
    DynamoPublisherRepository(stack.deployment.publisher_table, stack.aws.tokens.client).add(
        publisher
    )
    claims = stack.issuer.claims
    stack.issuer.claims = github_claims(
        repository,
        job_workflow_ref=f"{repository}/.github/workflows/release.yml@refs/tags/v0.0.19",
        environment=None,
    )
    try:
        oidc = stack.issuer.token(AUDIENCE)
    finally:
        stack.issuer.claims = claims
    data = ATTESTED.read_bytes()
    form = upload_form(data, ATTESTED.name, "pypi-attestations", "0.0.19")
    form["attestations"] = json.dumps([attestation])
    request = httpx.Request(
        "POST", f"{API_URL}/legacy/", data=form, files={"content": (ATTESTED.name, data)}
    )
    body = json.dumps({"token": oidc}).encode()
    mint = http_event(
        "POST", "/_/oidc/mint-token", headers={"content-type": "application/json"}, body=body
    )
    provenance = f"/integrity/pypi-attestations/0.0.19/{ATTESTED.name}/provenance"
    with stack.recorder.acting("api"):
        token = json.loads(_body(_invoke(mint)))["token"]
        headers = {**dict(request.headers), **basic(token)}
        uploaded = _invoke(http_event("POST", "/legacy/", headers=headers, body=request.read()))
        assert uploaded["statusCode"] == 200, _body(uploaded)
        served = _invoke(http_event("GET", provenance, headers=basic(_token(stack, "read"))))
    assert served["statusCode"] == 200, _body(served)


def read(stack: Stack) -> None:
    _upload(stack, "readable")
    auth = basic(_token(stack, "read"))
    with stack.recorder.acting("api"):
        for path in ("/simple/readable/", f"/packages/readable/{wheel_name('readable', '1.0')}"):
            response = _invoke(http_event("GET", path, headers=auth))
            assert response["statusCode"] == 200, (path, _body(response))


def yank(stack: Stack) -> None:
    _upload(stack, "yanked")
    body = {"filename": wheel_name("yanked", "1.0"), "reason": "broken"}
    _admin(stack, "POST", "/api/projects/yanked/yank", body)


def delete(stack: Stack) -> None:
    _upload(stack, "deleted")
    _admin(stack, "DELETE", f"/api/projects/deleted/files/{wheel_name('deleted', '1.0')}")


def status(stack: Stack) -> None:
    _upload(stack, "archived")
    _admin(stack, "POST", "/api/projects/archived/status", {"status": "archived", "reason": "old"})


def quarantine(stack: Stack) -> None:
    """PEP 792: a quarantined project's files are held aside (held/) and come back when it is
    lifted."""
    stack.aws.drop(f"packages/held/{wheel_name('held', '1.0')}", wheel_bytes("held", "1.0"))
    stack.aws.poller.drain()  # set up outside the recording: quarantined by another process
    Admin(Indexer(stack.aws.store)).set_status("held", "quarantined", "under review")
    stack.kvs.items[quarantine_record_key("held")] = QUARANTINE_RECORD_VALUE  # as it left it
    _admin(stack, "POST", "/api/projects/held/status", {"status": "active"})  # reads held/
    assert quarantine_record_key("held") not in stack.kvs.items  # the edge serves its files
    body = {"status": "quarantined", "reason": "again"}
    _admin(stack, "POST", "/api/projects/held/status", body)  # writes held/ and the record
    assert stack.kvs.items == {quarantine_record_key("held"): QUARANTINE_RECORD_VALUE}


def drop_into_quarantine(stack: Stack) -> None:
    """A file dropped into a quarantined project: the indexer holds it aside too."""
    stack.aws.drop(
        f"packages/held-drop/{wheel_name('held-drop', '1.0')}", wheel_bytes("held-drop", "1.0")
    )
    stack.aws.poller.drain()  # set up outside the recording, as an admin's action would be
    Admin(Indexer(stack.aws.store)).set_status("held-drop", "quarantined", "under review")
    stack.aws.drop(
        f"packages/held-drop/{wheel_name('held-drop', '2.0')}", wheel_bytes("held-drop", "2.0")
    )
    _index(stack)


def namespaces(stack: Stack) -> None:
    """PEP 752: a namespace added (its records and documents written, the page of the project
    it covers rewritten), a grant given, an upload refused, the namespace removed (its document
    deleted)."""
    _upload(stack, "nsco-old")
    _admin(stack, "POST", "/api/namespaces", {"name": "nsco", "owner": "team"})
    _admin(stack, "POST", "/api/namespaces/nsco/grants", {"principal": "user:someone"})
    data = wheel_bytes("nsco-new", "1.0")
    authorization = basic(_token(stack, "upload"))["Authorization"]
    event = upload_event(data, wheel_name("nsco-new", "1.0"), "nsco-new", "1.0", authorization)
    with stack.recorder.acting("api"):
        assert _invoke(event)["statusCode"] == 409
    _admin(stack, "DELETE", "/api/namespaces/nsco")


def drop_into_namespace(stack: Stack) -> None:
    """A file dropped into storage that would start a project in a namespace: set aside."""
    NamespaceAdmin(Indexer(stack.aws.store)).add("nsdrop", owner="team")  # set up outside
    stack.aws.drop(
        f"packages/nsdrop-x/{wheel_name('nsdrop-x', '1.0')}", wheel_bytes("nsdrop-x", "1.0")
    )
    _index(stack)
    assert Indexer(stack.aws.store).pages.read("nsdrop-x").page is None  # type: ignore[arg-type]


def trusted_publishing(stack: Stack) -> None:
    """A GitHub Actions OIDC token exchanged for an upload token, which then uploads."""
    assert stack.issuer is not None
    publisher = GitHubPublisher.create(
        "octo/minted",
        workflow="release.yml",
        projects={"minted"},
        owner_id="501",
        repository_id="1001",
        issuer=stack.issuer.url,
    )
    DynamoPublisherRepository(stack.deployment.publisher_table, stack.aws.tokens.client).add(
        publisher
    )
    body = json.dumps({"token": stack.issuer.token(AUDIENCE)}).encode()
    mint = http_event(
        "POST", "/_/oidc/mint-token", headers={"content-type": "application/json"}, body=body
    )
    with stack.recorder.acting("api"):
        response = _invoke(mint)
    assert response["statusCode"] == 200, _body(response)
    minted = json.loads(_body(response))["token"]
    data = wheel_bytes("minted", "1.0")
    event = upload_event(
        data, wheel_name("minted", "1.0"), "minted", "1.0", basic(minted)["Authorization"]
    )
    with stack.recorder.acting("api"):
        assert _invoke(event)["statusCode"] == 200


# -- the token sync -----------------------------------------------------------------------------


def token_sync(stack: Stack) -> None:
    """A token made with the CLI reaches the edge's KeyValueStore: the event source mapping
    reads the table's stream with the function's role, then invokes the handler with the
    records (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-eventsourcemapping.html)."""
    table = stack.deployment.token_table
    assert cli.main(["token", "create", "--table", table, "--scope", "read"]) == 0
    with stack.recorder.acting("sync"):
        records = _read_stream(stack)
        sync_handler.handler({"Records": records}, LambdaContext(function_name="skypi-sync"))  # type: ignore[arg-type]
    assert stack.kvs.items  # the new token, hashed, at the edge


def view(stack: Stack) -> None:
    """The view function: misses of a page, a private name's page and a file (CloudFront's
    origin group, the URI the stored key), then the timer: a page made again, one upstream
    dropped (its page and kept upstream page deleted), the schedule armed and moved."""
    upstream = StaticUpstream().start()
    try:
        mine = f"packages/mine/{wheel_name('mine', '1.0')}"  # a private name, not acting
        stack.aws.drop(mine, wheel_bytes("mine", "1.0"))
        stack.aws.indexer.apply([Landed(mine)])
        now = datetime.now(UTC)
        upstream.add_wheel("demo", "1.0", now - timedelta(days=30))
        upstream.add_wheel("demo", "2.0", now - timedelta(days=6))  # listed in a day
        upstream.add_wheel("gone", "1.0", now - timedelta(days=30))
        policy = {"upstream": upstream.url, "cooldown-days": 7, "refresh-minutes": 1}
        Views(stack.aws.store).save(parse_policy("safe", policy), new=True)  # the operator's
        context = LambdaContext(function_name="skypi-view")
        with stack.recorder.acting("view"):
            views = viewhandler._build(context)[1]
            paths = [
                "/views/safe/simple/demo/index.json.gz",
                "/views/safe/simple/gone/index.html",
                "/views/safe/simple/mine/index.json",
                f"/views/safe/files/demo/{wheel_name('demo', '1.0')}",
                "/view/safe/simple/index.json",
            ]
            for path in paths:
                answer = viewhandler.handler(http_event("GET", path), context)
                assert answer["statusCode"] == 200, (path, answer)
            del upstream.pages["gone"]
            views.clock = lambda: now + timedelta(minutes=2)  # both due: refresh-minutes
            assert viewhandler.handler({"skypi": "view-refresh"}, context) == {"made": 2}
        assert stack.aws.store.head("views/safe/simple/gone/index.json") is None
    finally:
        upstream.stop()


def view_purge(stack: Stack) -> None:
    """The operator's OSV data names a file the view cached MAL-: the bucket's event runs the
    view function, which makes the page again, deletes the cached copy and its .metadata, and
    queues their invalidation for the invalidator."""
    upstream = StaticUpstream().start()
    try:
        upstream.add_wheel("purged", "1.0", datetime.now(UTC) - timedelta(days=30))
        Views(stack.aws.store).save(parse_policy("purging", {"upstream": upstream.url}), new=True)
        name = wheel_name("purged", "1.0")
        context = LambdaContext(function_name="skypi-view")
        with stack.recorder.acting("view"):
            for path in (
                f"/views/purging/files/purged/{name}",
                f"/views/purging/files/purged/{name}.metadata",
            ):
                answer = viewhandler.handler(http_event("GET", path), context)
                assert answer["statusCode"] == 200, (path, answer)
        record = {"id": "MAL-2026-12", "affected": [
            {"package": {"ecosystem": "PyPI", "name": "purged"}, "versions": ["1.0"]}]}  # fmt: skip
        Views(stack.aws.store).import_osv(OsvData.from_records([record]))  # the operator's
        event = {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": OSV_KEY}}}]}
        with stack.recorder.acting("view"):
            assert viewhandler.handler(event, context) == {"made": 1}
        assert not list(stack.aws.store.list("views/purging/files/"))
    finally:
        upstream.stop()


def view_fill(stack: Stack) -> None:
    """The view function's background fills: a file past the fill limit is redirected while
    the function sends itself the file (an asynchronous invocation of its own ARN), whose run
    streams it into the bucket by a multipart upload; a lying upstream's is aborted."""
    upstream = StaticUpstream().start()
    invocations = AsyncLambda()
    try:
        now = datetime.now(UTC)
        upstream.add_wheel("big", "1.0", now - timedelta(days=30))
        upstream.add_wheel("big", "2.0", now - timedelta(days=30), served=b"x" * 1000)  # lies
        Views(stack.aws.store).save(parse_policy("fill", {"upstream": upstream.url}), new=True)
        arn = f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{stack.deployment.view_function}"
        context = LambdaContext(function_name="skypi-view", invoked_function_arn=arn)
        with pytest.MonkeyPatch.context() as patch, stack.recorder.acting("view"):
            invocations.install(patch)
            patch.setattr(viewhandler, "_built", None)  # a container of this function's ARN
            viewhandler._build(context)[1].fill_limit = 100  # bytes: both wheels are past it
            for version in ("1.0", "2.0"):
                path = f"/views/fill/files/big/{wheel_name('big', version)}"
                answer = viewhandler.handler(http_event("GET", path), context)
                assert answer["statusCode"] == 307, (path, answer)
            filled = invocations.deliver(lambda event: viewhandler.handler(event, context))
        assert filled == [{"filled": True}, {"filled": False}]
    finally:
        upstream.stop()


def _stored_by_a_view(stack: Stack, view: str, names: tuple[str, ...]) -> StaticUpstream:
    """A view (set up outside, not acting) that stored each name's page from upstream."""
    upstream = StaticUpstream().start()
    for name in names:
        upstream.add_wheel(name, "99.0", datetime.now(UTC) - timedelta(days=30))
    views = Views(stack.aws.store)
    views.save(parse_policy(view, {"upstream": upstream.url}), new=True)
    for name in names:
        views.project(view, name)
        assert stack.aws.store.head(f"views/{view}/simple/{name}/index.json") is not None
    return upstream


def upload_takes_over(stack: Stack) -> None:
    """Names a view stored from upstream, then uploaded here or reserved by a namespace: the
    view's stored pages are deleted and the names leave its served names, at once."""
    upstream = _stored_by_a_view(stack, "guard", ("taken-api", "takenns-x"))
    try:
        _upload(stack, "taken-api")
        _admin(stack, "POST", "/api/namespaces", {"name": "takenns", "owner": "team"})
        for name in ("taken-api", "takenns-x"):
            assert stack.aws.store.head(f"views/guard/simple/{name}/index.json") is None
        assert Views(stack.aws.store).served("guard") == []
    finally:
        upstream.stop()


def drop_in_takes_over(stack: Stack) -> None:
    """A drop-in of a name a view stored from upstream: its stored page goes at once."""
    upstream = _stored_by_a_view(stack, "guard-drop", ("taken-drop",))
    try:
        stack.aws.drop(
            f"packages/taken-drop/{wheel_name('taken-drop', '1.0')}",
            wheel_bytes("taken-drop", "1.0"),
        )
        _index(stack)
        assert stack.aws.store.head("views/guard-drop/simple/taken-drop/index.json") is None
        assert Views(stack.aws.store).served("guard-drop") == []
    finally:
        upstream.stop()


def _read_stream(stack: Stack) -> list[dict[str, Any]]:
    import botocore.session

    streams: DynamoDBStreamsClient = botocore.session.get_session().create_client(
        "dynamodbstreams", endpoint_url=stack.endpoint
    )
    arn = stack.deployment.token_stream_arn
    streams.list_streams(TableName=stack.deployment.token_table)
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    return records


SCENARIOS: dict[str, Callable[[Stack], None]] = {
    "indexer: drop-in": drop_in,
    "indexer: removal": removal,
    "indexer: overwrite restored": overwrite_restore,
    "indexer: reindex": reindex,
    "api: twine upload": twine_upload,
    "api: skypi publish, one request": publish_single,
    "api: skypi publish, multipart": publish_multipart,
    "api: skypi publish, multipart resumed": publish_resumed,
    "api: read a page and a file": read,
    "api: yank": yank,
    "api: delete": delete,
    "api: project status": status,
    "api: quarantine and its lifting": quarantine,
    "indexer: a drop-in into a quarantined project": drop_into_quarantine,
    "api: Trusted Publishing mint and upload": trusted_publishing,
    "api: namespaces added, granted, refusing, removed": namespaces,
    "indexer: a drop-in into a namespace": drop_into_namespace,
    "api: Trusted Publishing upload with a PEP 740 attestation": attested_upload,
    "sync: token to the edge": token_sync,
    "view: misses, a file and the timer": view,
    "view: a cached file named malicious later is purged": view_purge,
    "view: a file filled in the background, and a lying upstream's aborted": view_fill,
    "api: an upload and a namespace take over a view's stored pages": upload_takes_over,
    "indexer: a drop-in takes over a view's stored page": drop_in_takes_over,
}
