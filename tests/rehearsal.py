"""The deploy rehearsal (``make rehearse``): the synthesized template, replayed on moto.

It synthesizes the app with the pinned CDK CLI, then reads from the index's template, not
from the Python constants: the CloudFront Function's code (run under node by
tests/infra/run_edge_function.js, its KeyValueStore filled by the real token-sync handler
from the token table's DynamoDB stream), the distribution's cache behaviours (path pattern
-> origin) and origins (S3 or the API), and each Lambda function's handler and environment.
A small front server on loopback takes each request through the function, then to the
bucket (as CloudFront's origin access would read it) or to the API handler (as API Gateway
would invoke it), as the behaviours route it. The indexer runs from the queue the bucket's
notifications feed. Every S3 call a handler makes is matched against the S3 grants of that
function's role in the template; a call no statement allows is a denial, reported.

What it does not cover is listed in docs/deploy.md ("The deploy rehearsal").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextvars
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.handlers

from infra.cdn import VIEW_FUNCTION_ORIGIN_ID
from skypi.core.tokens import TokenRecord, new_token
from skypi.local.emulator import (
    KeyValueStoreEmulation,
    LambdaContext,
    Poller,
    Resources,
    provision,
    start_moto,
)
from skypi.store.dynamo_tokens import DynamoTokenRepository
from skypi.store.s3 import s3_config
from tests.apigw import http_event
from tests.infra.conftest import ACCOUNT, ROOT, run_synth
from tests.infra.test_edge_function import _event
from tests.loopback import Loopback
from tests.s3grants import S3_ACTION, allowed, s3_grants

log = logging.getLogger("skypi.rehearsal")
NODE = Path(sys.executable).with_name("node")
RUN_FUNCTION = ROOT / "tests" / "infra" / "run_edge_function.js"
REGION = "eu-west-1"
KVS_ID = "rehearsal-kvs"
KVS_ARN = f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/{KVS_ID}"
BUCKET = "skypi-rehearsal"
DOMAIN = "d111111abcdef8.cloudfront.net"  # the distribution's, in the documentation's example
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_role: contextvars.ContextVar[str | None] = contextvars.ContextVar("role", default=None)


# -- the template -----------------------------------------------------------------------------


def resolve(value: Any, names: dict[str, str]) -> Any:
    """A template value with the intrinsics the read parts use (Ref, Fn::GetAtt, Fn::Join)
    resolved against ``names`` (logical id or ``id.Attribute`` -> the rehearsal's value)."""
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return names[arg]
        if fn == "Fn::GetAtt":
            return names[f"{arg[0]}.{arg[1]}"]
        if fn == "Fn::Join":
            return arg[0].join(str(resolve(part, names)) for part in arg[1])
    if isinstance(value, list):
        return [resolve(v, names) for v in value]
    return value


def _only(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, r) for k, r in template["Resources"].items() if r["Type"] == kind]
    return found


@dataclass(frozen=True)
class Behaviour:
    pattern: str  # "" for the default behaviour
    origin: str  # the origin's id
    code: str = ""  # its viewer-request function's code (the views' behaviour has its own)


@dataclass(frozen=True)
class Plan:
    """What the rehearsal takes from the template."""

    behaviours: list[Behaviour]
    bucket_origins: set[str]
    functions: dict[str, dict[str, Any]]  # logical id -> {handler, env, s3 grants}
    # origin group id -> (primary origin, failover origin, the primary's statuses that fail over)
    groups: dict[str, tuple[str, str, frozenset[int]]] = field(default_factory=dict)


def _role_is(role: str) -> Callable[[list[Any]], bool]:
    return lambda roles: {"Ref": role} in roles


def read_plan(template: dict[str, Any], names: dict[str, str]) -> Plan:
    _, distribution = _only(template, "AWS::CloudFront::Distribution")
    config = distribution["Properties"]["DistributionConfig"]

    def code(behaviour: dict[str, Any]) -> str:
        [association] = behaviour["FunctionAssociations"]
        function = template["Resources"][association["FunctionARN"]["Fn::GetAtt"][0]]
        return str(resolve(function["Properties"]["FunctionCode"], names))

    behaviours = [
        Behaviour(b["PathPattern"], b["TargetOriginId"], code(b)) for b in config["CacheBehaviors"]
    ]
    default = config["DefaultCacheBehavior"]
    behaviours.append(Behaviour("", default["TargetOriginId"], code(default)))
    functions = {}
    for logical_id, resource in template["Resources"].items():
        properties = resource["Properties"] if resource["Type"] == "AWS::Lambda::Function" else {}
        if not str(properties.get("Handler", "")).startswith("skypi."):
            continue
        variables = properties.get("Environment", {}).get("Variables", {})
        functions[logical_id] = {
            "handler": properties["Handler"],
            "env": {k: str(resolve(v, names)) for k, v in variables.items()},
            "grants": s3_grants(template, _role_is(properties["Role"]["Fn::GetAtt"][0])),
        }
    return Plan(
        behaviours=behaviours,
        bucket_origins={o["Id"] for o in config["Origins"] if "S3OriginConfig" in o},
        functions=functions,
        groups={
            group["Id"]: (
                group["Members"]["Items"][0]["OriginId"],
                group["Members"]["Items"][1]["OriginId"],
                frozenset(group["FailoverCriteria"]["StatusCodes"]["Items"]),
            )
            for group in config.get("OriginGroups", {}).get("Items", [])
        },
    )


def distribution_stand_in(endpoint: str) -> str:
    """A distribution on moto for the functions' invalidations (its configuration is not the
    template's: the rehearsal's front server is the edge); its id."""
    cloudfront = boto3.client("cloudfront", endpoint_url=endpoint)
    origin = {
        "Id": "bucket",
        "DomainName": f"{BUCKET}.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    config: Any = {
        "CallerReference": "skypi-rehearsal",
        "Origins": {"Quantity": 1, "Items": [origin]},
        "DefaultCacheBehavior": {"TargetOriginId": "bucket", "ViewerProtocolPolicy": "allow-all"},
        "Comment": "skypi rehearsal",
        "Enabled": True,
    }
    return str(cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"])


def physical_names(template: dict[str, Any], resources: Resources) -> dict[str, str]:
    """The rehearsal's value of each logical id and attribute the read parts refer to."""
    names = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::StackName": "Skypi"}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind == "AWS::S3::Bucket" and logical_id.startswith("StorageIndex"):
            names[logical_id] = resources.bucket
        elif kind == "AWS::DynamoDB::Table":
            tokens = logical_id.startswith("AuthTokens")
            names[logical_id] = resources.token_table if tokens else resources.publisher_table
        elif kind == "AWS::SQS::Queue" and logical_id.startswith("IndexerEvents"):
            # The indexer's own queue (its functions send the root listing's rebuild to it):
            # the one the rehearsal provisioned, which the bucket's notifications feed.
            names[logical_id] = resources.queue_url
            names[f"{logical_id}.Arn"] = resources.queue_arn
        elif kind == "AWS::SQS::Queue" and not logical_id.startswith("Indexer"):
            # Other queues (the invalidations'): made on moto under their logical id.
            sqs = boto3.client("sqs")
            names[logical_id] = sqs.create_queue(QueueName=logical_id[:80])["QueueUrl"]
        elif kind == "AWS::CloudFront::KeyValueStore":
            names[f"{logical_id}.Id"], names[f"{logical_id}.Arn"] = KVS_ID, KVS_ARN
        elif kind == "AWS::Scheduler::ScheduleGroup":  # the views' timer's group, on moto
            boto3.client("scheduler").create_schedule_group(Name=logical_id[:64])
            names[logical_id] = logical_id[:64]
        elif kind == "AWS::IAM::Role" and logical_id.startswith("ViewsSchedulerRole"):
            names[f"{logical_id}.Arn"] = f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
    return names


# -- the roles' S3 grants ---------------------------------------------------------------------


@dataclass
class Ledger:
    """Every S3 call a handler made, under the role of the function making it."""

    grants: dict[str, dict[str, list[str]]]
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # role, action, key
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """botocore's ``before-parameter-build.s3``: the operation and its parameters."""
        role = _role.get()
        if role is None:
            return
        action = S3_ACTION.get(model.name, f"s3:{model.name} (not mapped)")
        keys = [o["Key"] for o in params.get("Delete", {}).get("Objects", [])]
        with self.lock:
            for key in keys or [str(params.get("Key", ""))]:
                self.calls.append((role, action, key))

    def denials(self) -> list[str]:
        denied = []
        for role, action, key in self.calls:
            if not allowed(self.grants[role], action, key):
                denied.append(f"{role}: {action} {key}".rstrip())
        return sorted(set(denied))


@contextmanager
def as_role(role: str) -> Iterator[None]:
    token = _role.set(role)
    try:
        yield
    finally:
        _role.reset(token)


# -- the edge and the origins -----------------------------------------------------------------


def run_edge(code: str, event: dict[str, Any], kvs: dict[str, str]) -> dict[str, Any]:
    """The template's function code on one viewer-request event, under node."""
    payload = {"jobs": [{"source": code, "events": [event]}], "kvs": kvs}
    result = subprocess.run(
        [str(NODE), str(RUN_FUNCTION)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    ((answer,),) = json.loads(result.stdout)
    return dict(answer)


def behaviour_for(behaviours: list[Behaviour], path: str) -> Behaviour:
    """CloudFront's rule: the first behaviour whose (case-sensitive) pattern matches the
    viewer's path, else the default one."""
    return next(b for b in behaviours if not b.pattern or fnmatchcase(path, b.pattern))


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def edge_answer(result: dict[str, Any]) -> Answer:
    headers = {k: v["value"] for k, v in result.get("headers", {}).items()}
    body = result.get("body", "")
    if isinstance(body, dict):
        data = body.get("data", "")
        raw = base64.b64decode(data) if body.get("encoding") == "base64" else data.encode()
    else:
        raw = str(body).encode()
    return Answer(int(result["statusCode"]), headers, raw)


def from_bucket(s3: Any, bucket: str, method: str, uri: str) -> Answer:
    """The bucket through origin access control: GET and HEAD only, a missing key is 404
    (the bucket policy grants CloudFront ListBucket)."""
    key = unquote(uri[1:])
    try:
        call = s3.get_object if method == "GET" else s3.head_object
        got = call(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as error:
        status = int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        return Answer(status, {"content-type": "application/xml"}, b"")
    headers = {
        k: v
        for k, v in got["ResponseMetadata"]["HTTPHeaders"].items()
        if k in {"content-type", "content-encoding", "cache-control", "etag", "last-modified"}
    }
    body = got["Body"].read() if method == "GET" else b""
    return Answer(200, headers, body)


def from_api(handler: Callable[..., Any], result: dict[str, Any], body: bytes) -> Answer:
    """API Gateway's HTTP API (payload 2.0) invoking the API function with the request the
    edge function let through (all viewer headers except Host, as the origin request policy
    forwards them)."""
    headers = {k: v["value"] for k, v in result["headers"].items() if k != "host"}
    query = "&".join(
        f"{name}={value['value']}" for name, value in result.get("querystring", {}).items()
    )
    event = http_event(result["method"], result["uri"], headers=headers, body=body or None)
    event["rawQueryString"] = query
    response = handler(event, LambdaContext(function_name="skypi-api"))
    raw = response.get("body", "") or ""
    data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode()
    out = {k.lower(): str(v) for k, v in response.get("headers", {}).items()}
    return Answer(int(response["statusCode"]), out, data)


# -- the rehearsal ----------------------------------------------------------------------------


class TokenSync:
    """The token table's stream -> the real token-sync handler -> the KeyValueStore, as the
    event source mapping would run it (in order, per shard)."""

    def __init__(self, endpoint: str, table: str, handler: Callable[..., Any]) -> None:
        self.streams = boto3.client("dynamodbstreams", endpoint_url=endpoint)
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
        self.arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.handler = handler
        self.iterators: dict[str, str] = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rehearsal-token-sync", daemon=True)

    def poll_once(self) -> None:
        shards = self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self.iterators:
                self.iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            got = self.streams.get_records(ShardIterator=self.iterators[shard_id])
            self.iterators[shard_id] = got.get("NextShardIterator") or self.iterators[shard_id]
            if got["Records"]:
                with as_role("sync"):
                    self.handler({"Records": got["Records"]}, LambdaContext("skypi-token-sync"))

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.poll_once()
            except Exception:
                log.exception("the token sync failed; retrying")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)


def _front(rehearsal: Rehearsal) -> type[BaseHTTPRequestHandler]:
    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = rehearsal.request(self.command, self.path, dict(self.headers), body)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                if name not in {"content-length", "transfer-encoding", "connection"}:
                    self.send_header(name, value)
            self.send_header(
                "content-length", str(0 if self.command == "HEAD" else len(answer.body))
            )
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("front: " + format, *args)

    return Front


class Rehearsal:
    """The moto-backed AWS path as the template wires it, behind a loopback front server."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        for name, value in CREDENTIALS.items():
            os.environ.setdefault(name, value)
        self.moto, self.endpoint = start_moto("127.0.0.1", 0)
        os.environ["AWS_ENDPOINT_URL"] = self.endpoint
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, config=s3_config(self.endpoint))
        self.s3.create_bucket(  # in the stack's region (provision takes an existing bucket)
            Bucket=BUCKET,
            CreateBucketConfiguration={"LocationConstraint": REGION},  # type: ignore[typeddict-item]
        )
        sqs = boto3.client("sqs", endpoint_url=self.endpoint)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=self.endpoint)
        self.resources = provision(self.s3, sqs, BUCKET, region=REGION, dynamodb=self.dynamodb)
        names = physical_names(template, self.resources)
        distribution, _ = _only(template, "AWS::CloudFront::Distribution")
        names[distribution] = distribution_stand_in(self.endpoint)  # where the handlers invalidate
        names[f"{distribution}.DomainName"] = DOMAIN  # what the pages' setup lines name
        self.plan = read_plan(template, names)
        self.ledger = Ledger({k: f["grants"] for k, f in self.plan.functions.items()})
        self.roles = {f["handler"]: k for k, f in self.plan.functions.items()}
        for function in self.plan.functions.values():  # one process: the union of them
            os.environ.update(function["env"])
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        botocore.handlers.BUILTIN_HANDLERS.append(("before-parameter-build.s3", self.ledger.record))
        self.kvs = KeyValueStoreEmulation()
        self.api = self._handler("skypi.api.handler.")
        self.api_role = self.roles["skypi.api.handler.handler"]
        self.api_lock, self.api_loop = threading.Lock(), asyncio.new_event_loop()
        self.poller = Poller(
            sqs, self.resources, self._with_role(self._handler("skypi.indexer.handler."))
        )
        self.sync = TokenSync(self.endpoint, self.resources.token_table, self._sync_handler())
        self.server = Loopback(_front(self))
        self.url = self.server.url()

    def _handler(self, prefix: str) -> Callable[..., Any]:
        (name,) = [h for h in self.roles if h.startswith(prefix)]
        module, _, attribute = name.rpartition(".")
        return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]

    def _with_role(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        role = next(r for h, r in self.roles.items() if getattr(handler, "__module__", "") in h)

        def invoke(event: dict[str, Any], context: Any) -> Any:
            with as_role(role):
                return handler(event, context)

        return invoke

    def _sync_handler(self) -> Callable[..., Any]:
        from skypi.edge_tokens import handler as sync
        from skypi.edge_tokens.sync import KeyValueStoreWriter

        sync._writer = KeyValueStoreWriter(KVS_ARN, self.kvs)  # type: ignore[arg-type]
        role = self.roles[f"{sync.__name__}.handler"]
        self.ledger.grants["sync"] = self.ledger.grants[role]
        return self._handler("skypi.edge_tokens.")

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        parts = urlsplit(target)
        event = _event(method, parts.path, parts.query, headers)
        behaviour = behaviour_for(self.plan.behaviours, parts.path)
        result = run_edge(behaviour.code, event, dict(self.kvs.items))
        if "statusCode" in result:
            return edge_answer(result)
        origin = result.get("selectedOrigin") or behaviour.origin
        if origin in self.plan.groups:  # an origin group: the same request to the second origin
            primary, failover, statuses = self.plan.groups[origin]  # on the first's failure
            assert primary in self.plan.bucket_origins, primary
            answer = from_bucket(self.s3, self.resources.bucket, result["method"], result["uri"])
            if answer.status not in statuses:
                return answer
            assert failover not in self.plan.bucket_origins, failover
            # what a bucket behaviour forwards: no viewer header, no query
            forwarded = {**result, "headers": {}, "querystring": {}}
            if failover == VIEW_FUNCTION_ORIGIN_ID:  # the view Lambda's function URL
                return self._view(forwarded)
            return self._api(forwarded, b"")
        if origin in self.plan.bucket_origins:
            return from_bucket(self.s3, self.resources.bucket, result["method"], result["uri"])
        return self._api(result, body)

    def _view(self, result: dict[str, Any]) -> Answer:
        """The view Lambda, as its function URL invokes it (payload 2.0, as API Gateway's)."""
        handler = self._handler("skypi.api.viewhandler.")
        with self.api_lock, as_role(self.roles["skypi.api.viewhandler.handler"]):
            asyncio.set_event_loop(self.api_loop)
            return from_api(handler, result, b"")

    def _api(self, result: dict[str, Any], body: bytes) -> Answer:
        # One Lambda instance takes one request at a time; Mangum wants the thread's loop.
        with self.api_lock, as_role(self.api_role):
            asyncio.set_event_loop(self.api_loop)
            return from_api(self.api, result, body)

    def admin_token(self) -> str:
        token = new_token()
        record = TokenRecord.create(token, name="rehearsal", scopes={"admin"}, projects=None)
        DynamoTokenRepository(self.resources.token_table, self.dynamodb).add(record)
        return token

    def start(self) -> None:
        self.poller.start()
        self.sync.start()
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.sync.stop()
        self.poller.stop()
        self.moto.stop()
        self.api_loop.close()
        with_ledger = self.ledger.record
        botocore.handlers.BUILTIN_HANDLERS[:] = [
            h for h in botocore.handlers.BUILTIN_HANDLERS if h[1] is not with_ledger
        ]


def wait_for_edge(rehearsal: Rehearsal, token: str, seconds: float = 30) -> None:
    """Until the token has reached the KeyValueStore (the sync runs from the stream)."""
    from skypi.core.tokens import hash_token

    deadline = time.monotonic() + seconds
    while hash_token(token) not in rehearsal.kvs.items:
        if time.monotonic() > deadline:
            raise TimeoutError("the token never reached the edge's KeyValueStore")
        time.sleep(0.2)


def check_pages_for_people(rehearsal: Rehearsal, token: str) -> int:
    """A mistyped project page takes the origin group's way to the API's page for people,
    the landing page names the distribution's address without its script, and a view's miss
    takes its origin group's way to the view Lambda."""
    credentials = base64.b64encode(f"__token__:{token}".encode()).decode()
    browser = {
        "accept": "text/html,application/xhtml+xml,*/*;q=0.8",
        "authorization": f"Basic {credentials}",
    }
    missing = rehearsal.request("GET", "/project/no-such-project/", browser, b"")
    landing = rehearsal.request("GET", "/", browser, b"")
    view = rehearsal.request("GET", "/view/no-such-view/simple/demo/", browser, b"")
    checks = {
        # the views' function, the bucket's miss, then the view Lambda's own answer
        "a view that does not exist is the view Lambda's 404": view.status == 404
        and b"No view 'no-such-view'" in view.body,
        "a missing page for people is the API's 404 page": missing.status == 404
        and missing.headers.get("content-type", "").startswith("text/html")
        and b"<code>/project/no-such-project/</code>" in missing.body,
        "the landing page names the index's address": landing.status == 200
        and f"https://{DOMAIN}/simple/".encode() in landing.body,
    }
    for what, passed in checks.items():
        print(f"rehearsal: {what}: {'yes' if passed else 'NO'}", flush=True)
    return 0 if all(checks.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="where to synthesize (default: a temp dir)")
    parser.add_argument("--wait", default="30", help="doctor's --wait (seconds)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="skypi-rehearsal-") as tmp:
        out = args.out or Path(tmp)
        synth = run_synth(out, {"skypi:account": ACCOUNT, "skypi:region": REGION}, REGION)
        rehearsal = Rehearsal(synth.template)
        try:
            rehearsal.start()
            token = rehearsal.admin_token()
            wait_for_edge(rehearsal, token)
            print(f"rehearsal: {rehearsal.url} (moto {rehearsal.endpoint})", flush=True)
            doctor = [sys.executable, "-m", "skypi.cli", "doctor", rehearsal.url]
            code = subprocess.call([*doctor, "--token", token, "--wait", args.wait])
            code = code or check_pages_for_people(rehearsal, token)
        finally:
            rehearsal.stop()
    calls, denials = rehearsal.ledger.calls, rehearsal.ledger.denials()
    print(f"rehearsal: {len(calls)} S3 calls by the functions, checked against their roles")
    for denial in denials:
        print(f"  DENIED {denial}")
    return code or (1 if denials else 0)


if __name__ == "__main__":
    sys.exit(main())
