"""CloudFront in small, derived from the synthesized template: the behaviour a path selects
(its pattern, allowed methods and viewer-request function), the function's own code from the
template run under node, and the origin or origin group it then targets (failover on the
group's codes, for GET, HEAD and OPTIONS only). The origins are given by the test: what the
bucket and the view Lambda's function URL answer. No cache: every request reaches the origins,
so a test sees which of them answered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tests.infra.test_edge_function import _event, run_jobs
from tests.loopback import Loopback

FAILOVER_METHODS = {"GET", "HEAD", "OPTIONS"}  # "Optimize high availability ... origin failover"
KVS_UNDER_TEST = "kvs-under-test"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    origin: str | None = None  # which origin answered; None: CloudFront or the function


# An origin: (method, the URI CloudFront sends, the query, the headers) -> its answer.
Origin = Callable[[str, str, str, Mapping[str, str]], Answer]


@dataclass
class CloudFrontModel:
    template: Mapping[str, Any]
    origins: Mapping[str, Origin]
    kvs: Mapping[str, str] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)  # the origins asked, in order

    @property
    def config(self) -> Mapping[str, Any]:
        [distribution] = [
            r
            for r in self.template["Resources"].values()
            if r["Type"] == "AWS::CloudFront::Distribution"
        ]
        return distribution["Properties"]["DistributionConfig"]  # type: ignore[no-any-return]

    def behaviour(self, path: str) -> Mapping[str, Any]:
        """CloudFront's choice: the first pattern that matches, case-sensitively."""
        for behaviour in self.config["CacheBehaviors"]:
            if fnmatchcase(path, behaviour["PathPattern"]):
                return behaviour  # type: ignore[no-any-return]
        return self.config["DefaultCacheBehavior"]  # type: ignore[no-any-return]

    def function_code(self, behaviour: Mapping[str, Any]) -> str:
        [association] = behaviour["FunctionAssociations"]
        function_id = association["FunctionARN"]["Fn::GetAtt"][0]
        code = self.template["Resources"][function_id]["Properties"]["FunctionCode"]
        separator, parts = code["Fn::Join"]
        return str(separator.join(KVS_UNDER_TEST if isinstance(p, dict) else p for p in parts))

    def request(
        self, method: str, path: str, query: str = "", headers: Mapping[str, str] | None = None
    ) -> Answer:
        headers = dict(headers or {})
        behaviour = self.behaviour(path)
        if method not in behaviour["AllowedMethods"]:
            return Answer(403, {}, b"")  # CloudFront refuses the method itself
        event = _event(method, path, query, headers)
        [[result]] = run_jobs([(self.function_code(behaviour), [event])], dict(self.kvs))
        if "statusCode" in result:  # the function answered
            response_headers = {k: v["value"] for k, v in result.get("headers", {}).items()}
            data = result.get("body", {}).get("data", "")
            return Answer(result["statusCode"], response_headers, data.encode())
        target = result.get("selectedOrigin") or behaviour["TargetOriginId"]
        forwarded = "&".join(f"{k}={v['value']}" for k, v in result["querystring"].items())
        groups = {g["Id"]: g for g in self.config.get("OriginGroups", {}).get("Items", [])}
        if target not in groups:
            return self._ask(target, method, result["uri"], forwarded, headers)
        group = groups[target]
        primary, secondary = (m["OriginId"] for m in group["Members"]["Items"])
        answer = self._ask(primary, method, result["uri"], forwarded, headers)
        codes = group["FailoverCriteria"]["StatusCodes"]["Items"]
        if answer.status in codes and method in FAILOVER_METHODS:
            return self._ask(secondary, method, result["uri"], forwarded, headers)
        return answer

    def _ask(
        self, origin: str, method: str, uri: str, query: str, headers: Mapping[str, str]
    ) -> Answer:
        self.asked.append(origin)
        answer = self.origins[origin](method, uri, query, headers)
        return Answer(answer.status, answer.headers, answer.body, origin)


def s3_origin(s3: Any, bucket: str) -> Origin:
    """The bucket through origin access control, as CloudFront may list it: a missing key is
    404 (S3 decodes the URI back into the key)."""

    def ask(method: str, uri: str, query: str, headers: Mapping[str, str]) -> Answer:
        try:
            got = s3.get_object(Bucket=bucket, Key=unquote(uri[1:]))
        except s3.exceptions.NoSuchKey:
            return Answer(404, {}, b"")
        answer = {"content-type": got["ContentType"], "etag": got["ETag"]}
        if got.get("CacheControl"):  # S3 answers with the object's Cache-Control metadata
            answer["cache-control"] = got["CacheControl"]
        if got.get("ContentEncoding"):
            answer["content-encoding"] = got["ContentEncoding"]
        body = got["Body"].read()
        return Answer(200, answer, b"" if method == "HEAD" else body)

    return ask


def serve(model: CloudFrontModel) -> Loopback:
    """The model on a loopback port, for real clients (pip, uv, poetry): each request of theirs
    goes through :meth:`CloudFrontModel.request`, its answer back as it is."""

    class Distribution(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._answer("GET")

        def do_HEAD(self) -> None:
            self._answer("HEAD")

        def _answer(self, method: str) -> None:
            path, _, query = self.path.partition("?")
            answer = model.request(method, path, query, dict(self.headers.items()))
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(answer.body)

    return Loopback(Distribution)  # serving once started (or in a ``with``)
