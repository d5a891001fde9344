"""Every AWS call the functions make, recorded from botocore's event hooks, and the IAM
requests each call is authorized as.

The action(s) each operation needs are AWS's: the Service Authorization Reference maps every
API operation to the IAM actions it authorizes
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html, and
the same page for SQS, DynamoDB, CloudFront and CloudFront KeyValueStore), and the S3 guide
lists them per operation
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html):
HeadObject is s3:GetObject, a copy is s3:PutObject on its destination and s3:GetObject (or
s3:GetObjectVersion, naming a version) on its source, the multipart calls are s3:PutObject, a
listing is s3:ListBucket on the bucket's ARN. An operation without a mapping here fails the
test that made it: add it with its documented actions.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

from tests.iam.policy import Request
from tests.iam.template import ACCOUNT, PARTITION, REGION


class Unmapped(KeyError):
    """An AWS operation this tier does not know the IAM actions of."""


@dataclass(frozen=True)
class Call:
    """One API call (or presigned request) a function made, as IAM sees it."""

    function: str
    service: str
    operation: str
    requests: tuple[Request, ...]
    presigned: bool = False

    def __str__(self) -> str:
        how = " (presigned)" if self.presigned else ""
        return f"{self.service}.{self.operation}{how}"


def _s3_object(params: Mapping[str, Any]) -> str:
    return f"arn:{PARTITION}:s3:::{params['Bucket']}/{params['Key']}"


def _s3_read(params: Mapping[str, Any], version_key: str = "VersionId") -> list[Request]:
    action = "s3:GetObjectVersion" if params.get(version_key) else "s3:GetObject"
    return [Request(action, _s3_object(params))]


def _s3_copy(params: Mapping[str, Any]) -> list[Request]:
    source = params["CopySource"]
    if isinstance(source, str):
        path, _, query = unquote(source).lstrip("/").partition("?versionId=")
        bucket, _, key = path.partition("/")
        source = {"Bucket": bucket, "Key": key, **({"VersionId": query} if query else {})}
    return [Request("s3:PutObject", _s3_object(params)), *_s3_read(source)]


def _s3_list(action: str) -> Callable[[Mapping[str, Any]], list[Request]]:
    def requests(params: Mapping[str, Any]) -> list[Request]:
        context = {"s3:prefix": [params["Prefix"]]} if "Prefix" in params else {}
        return [Request(action, f"arn:{PARTITION}:s3:::{params['Bucket']}", context)]

    return requests


def _s3_object_action(action: str) -> Callable[[Mapping[str, Any]], list[Request]]:
    return lambda params: [Request(action, _s3_object(params))]


def _s3_delete(params: Mapping[str, Any]) -> list[Request]:
    action = "s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"
    return [Request(action, _s3_object(params))]


def _s3_delete_many(params: Mapping[str, Any]) -> list[Request]:
    return [
        r
        for o in params["Delete"]["Objects"]
        for r in _s3_delete({"Bucket": params["Bucket"], **o})
    ]


S3: dict[str, Callable[[Mapping[str, Any]], list[Request]]] = {
    "GetObject": _s3_read,
    "HeadObject": _s3_read,
    "GetObjectAttributes": lambda p: [
        Request(
            "s3:GetObjectVersionAttributes" if p.get("VersionId") else "s3:GetObjectAttributes",
            _s3_object(p),
        )
    ],
    "PutObject": _s3_object_action("s3:PutObject"),
    "CopyObject": _s3_copy,
    "CreateMultipartUpload": _s3_object_action("s3:PutObject"),
    "UploadPart": _s3_object_action("s3:PutObject"),
    "CompleteMultipartUpload": _s3_object_action("s3:PutObject"),
    "AbortMultipartUpload": _s3_object_action("s3:AbortMultipartUpload"),
    "ListParts": _s3_object_action("s3:ListMultipartUploadParts"),
    "DeleteObject": _s3_delete,
    "DeleteObjects": _s3_delete_many,
    "ListObjectsV2": _s3_list("s3:ListBucket"),
    "ListObjects": _s3_list("s3:ListBucket"),
    "ListObjectVersions": _s3_list("s3:ListBucketVersions"),
}

SQS = {  # operation -> action; the resource is the queue's ARN
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "GetQueueUrl": "sqs:GetQueueUrl",
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
}

DYNAMODB = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"}
STREAMS = {"DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"}


def _queue_arn(params: Mapping[str, Any]) -> str:
    name = params.get("QueueName") or str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
    return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}"


def _schedule(operation: str, params: Mapping[str, Any]) -> tuple[Request, ...]:
    """A schedule's create or update: the action on the schedule's ARN, and passing the role
    its target runs as (EventBridge Scheduler User Guide, "Using identity-based policies":
    iam:PassRole on the execution role; https://docs.aws.amazon.com/scheduler/latest/UserGuide/security_iam_id-based-policy-examples.html)."""
    group = params.get("GroupName") or "default"
    arn = f"arn:{PARTITION}:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{params['Name']}"
    passed = {"iam:PassedToService": ["scheduler.amazonaws.com"]}
    return (
        Request(f"scheduler:{operation}", arn),
        Request("iam:PassRole", str(params["Target"]["RoleArn"]), passed),
    )


_EQUALS = re.compile(r"^\s*(#?\w+)\s*=\s*(:\w+)")


def _leading_keys(
    operation: str, params: Mapping[str, Any], hash_keys: Mapping[str, str]
) -> list[str] | None:
    """The partition key value(s) the call touches: IAM's ``dynamodb:LeadingKeys``
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html)."""
    attribute = hash_keys.get(params["TableName"])
    if attribute is None or operation in {"DescribeTable", "Scan"}:
        return None
    if operation == "Query":
        match = _EQUALS.match(params.get("KeyConditionExpression", ""))
        if match is None:
            raise Unmapped(f"Query key condition {params.get('KeyConditionExpression')!r}")
        name, placeholder = match.groups()
        name = params.get("ExpressionAttributeNames", {}).get(name, name)
        if name != attribute:
            raise Unmapped(f"Query whose first condition is on {name}, not {attribute}")
        return [next(iter(params["ExpressionAttributeValues"][placeholder].values()))]
    item = params.get("Key") or params.get("Item") or {}
    return [next(iter(item[attribute].values()))]


@dataclass
class Recorder:
    """Hooks every botocore client made while it is installed, and records the calls made
    while a function is :meth:`acting`, as the IAM requests they need."""

    hash_keys: dict[str, str] = field(default_factory=dict)  # table -> partition key
    calls: list[Call] = field(default_factory=list)
    function: str | None = None
    _iterators: dict[str, str] = field(default_factory=dict)  # shard iterator -> stream ARN
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params", self._record)
        client.meta.events.register("after-call.dynamodb-streams", self._remember_iterator)
        client.meta.events.register("after-call.s3", self._missing_key)
        return client

    @contextmanager
    def acting(self, function: str) -> Iterator[list[Call]]:
        """Attribute the calls made in the block to ``function`` (indexer, api or sync)."""
        before = len(self.calls)
        self.function = function
        made: list[Call] = []
        try:
            yield made
        finally:
            self.function = None
            made.extend(self.calls[before:])

    def _record(self, params: Mapping[str, Any], model: Any, context: Any, **_: Any) -> None:
        if self.function is None:
            return
        service = model.service_model.service_name
        requests = self.requests(service, model.name, params)
        presigned = bool(context.get("is_presign_request")) if context else False
        with self._lock:
            if context is not None:
                context["skypi_call"] = len(self.calls)
            self.calls.append(Call(self.function, service, model.name, requests, presigned))

    def _missing_key(self, http_response: Any, model: Any, context: Any, **_: Any) -> None:
        """A GET or HEAD of a key that does not exist answers 404 only to a caller that may
        list the bucket (s3:ListBucket), 403 to any other: the code reads 404 as "absent", so
        such a call needs the listing grant too (the Permissions of
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html and API_GetObject)."""
        index = (context or {}).get("skypi_call")
        if index is None or model.name not in {"GetObject", "HeadObject"}:
            return
        if http_response.status_code == 404:
            call = self.calls[index]
            bucket = call.requests[0].resource.split(":::", 1)[1].split("/", 1)[0]
            listing = Request("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}")
            with self._lock:
                self.calls[index] = replace(call, requests=(*call.requests, listing))

    def _remember_iterator(self, model: Any, parsed: Mapping[str, Any], **_: Any) -> None:
        for name in ("ShardIterator", "NextShardIterator"):
            if parsed.get(name) and self._pending_stream:
                self._iterators[parsed[name]] = self._pending_stream

    _pending_stream: str | None = None

    def requests(
        self, service: str, operation: str, params: Mapping[str, Any]
    ) -> tuple[Request, ...]:
        if service == "s3" and operation in S3:
            return tuple(S3[operation](params))
        if service == "sqs" and operation in SQS:
            return (Request(SQS[operation], _queue_arn(params)),)
        if service == "dynamodb" and operation in DYNAMODB:
            keys = _leading_keys(operation, params, self.hash_keys)
            table = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}"
            context = {} if keys is None else {"dynamodb:LeadingKeys": keys}
            return (Request(f"dynamodb:{operation}", table, context),)
        if service == "dynamodbstreams" and operation in STREAMS:
            return (Request(f"dynamodb:{operation}", self._stream(operation, params)),)
        if service == "cloudfront" and operation == "CreateInvalidation":
            arn = f"arn:{PARTITION}:cloudfront::{ACCOUNT}:distribution/{params['DistributionId']}"
            return (Request("cloudfront:CreateInvalidation", arn),)
        if service == "cloudfront-keyvaluestore" and operation in {
            "DescribeKeyValueStore",
            "UpdateKeys",
        }:
            return (Request(f"cloudfront-keyvaluestore:{operation}", params["KvsARN"]),)
        if service == "scheduler" and operation in {"CreateSchedule", "UpdateSchedule"}:
            return _schedule(operation, params)
        if service == "lambda" and operation == "Invoke":  # the Lambda API reference's
            return (Request("lambda:InvokeFunction", str(params["FunctionName"])),)
        raise Unmapped(f"{service}.{operation}: which IAM actions it needs is not mapped")

    def _stream(self, operation: str, params: Mapping[str, Any]) -> str:
        if operation == "ListStreams":
            return "*"  # ListStreams takes no resource (Service Authorization Reference)
        if operation == "GetRecords":
            return self._iterators[params["ShardIterator"]]
        self._pending_stream = str(params["StreamArn"])
        return self._pending_stream
