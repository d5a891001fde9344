"""The AWS data path on one machine: the bucket, queue and notification the stack creates, and
an SQS poller that runs the real indexer handler the way Lambda's event source mapping does.

Used by ``skypi dev`` (against a moto server) and by the tests.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from skypi.core.filenames import DISTRIBUTION_SUFFIXES
from skypi.core.keys import PACKAGES_PREFIX
from skypi.core.tokens import EDGE_MAX_KEY_BYTES, EDGE_MAX_STORE_BYTES, EDGE_MAX_VALUE_BYTES

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger("skypi.dev")

# As the stack configures them (infra/): a redrive after 5 receives, and a visibility timeout
# comfortably above the indexer's run time.
MAX_RECEIVE_COUNT = 5
VISIBILITY_TIMEOUT = 30
BATCH_SIZE = 10
# The invalidation queue (infra/invalidations.py): a refused invalidation is sent again after
# the visibility timeout, up to 12 times, then waits in its dead-letter queue.
INVALIDATION_MAX_RECEIVE_COUNT = 12
INVALIDATION_VISIBILITY_TIMEOUT = 300

Handler = Callable[[dict[str, Any], Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Resources:
    bucket: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    region: str
    token_table: str = ""
    publisher_table: str = ""
    invalidation_queue_url: str = ""
    invalidation_queue_arn: str = ""
    invalidation_dead_letter_queue_url: str = ""


def provision(
    s3: S3Client,
    sqs: SQSClient,
    bucket: str,
    *,
    region: str = "us-east-1",
    visibility_timeout: int = VISIBILITY_TIMEOUT,
    dynamodb: DynamoDBClient | None = None,
    invalidation_visibility_timeout: int = INVALIDATION_VISIBILITY_TIMEOUT,
) -> Resources:
    """A versioned bucket whose ``packages/`` events go to a queue with a dead-letter queue,
    the queue of pending CloudFront invalidations with its own, and (given ``dynamodb``) the
    token table with its stream and the publisher table.

    Idempotent, so ``skypi dev`` can run it at every start."""
    table = f"{bucket}-tokens" if dynamodb is not None else ""
    publishers = f"{bucket}-publishers" if dynamodb is not None else ""
    if dynamodb is not None:
        _tables(dynamodb, table, publishers)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    queue_url, queue_arn, dlq_url = _queue_with_dead_letters(
        sqs, f"{bucket}-index-events", f"{bucket}-index-dlq", visibility_timeout, MAX_RECEIVE_COUNT
    )
    _notify(s3, bucket, queue_arn)
    pending = _queue_with_dead_letters(
        sqs,
        f"{bucket}-invalidations",
        f"{bucket}-invalidations-dlq",
        invalidation_visibility_timeout,
        INVALIDATION_MAX_RECEIVE_COUNT,
    )
    return Resources(bucket, queue_url, queue_arn, dlq_url, region, table, publishers, *pending)


def _tables(dynamodb: DynamoDBClient, tokens: str, publishers: str) -> None:
    """The token table, with its stream (the edge's copy follows it), and the publisher
    table, as infra/auth.py makes them; those that exist are left as they are."""
    existing = dynamodb.list_tables()["TableNames"]
    if tokens not in existing:
        dynamodb.create_table(
            TableName=tokens,
            KeySchema=[{"AttributeName": "hash", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "hash", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    if publishers not in existing:
        dynamodb.create_table(  # kind (publisher | oidc-token) and id
            TableName=publishers,
            KeySchema=[
                {"AttributeName": "kind", "KeyType": "HASH"},
                {"AttributeName": "id", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "kind", "AttributeType": "S"},
                {"AttributeName": "id", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )


def _notify(s3: S3Client, bucket: str, queue_arn: str) -> None:
    """Send the bucket's distribution events under ``packages/`` to the queue. One
    configuration per distribution suffix (S3 filters take one prefix and one suffix): the
    indexer's own ``.metadata`` writes under packages/ must not wake it up again."""
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": f"skypi-packages{suffix.replace('.', '-')}",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": PACKAGES_PREFIX},
                                {"Name": "suffix", "Value": suffix},
                            ]
                        }
                    },
                }
                for suffix in DISTRIBUTION_SUFFIXES
            ]
        },
    )


def _queue_with_dead_letters(
    sqs: SQSClient, name: str, dead_letters: str, visibility: int, max_receive_count: int
) -> tuple[str, str, str]:
    """(url, ARN, dead-letter queue url) of a queue that gives up on a message after
    ``max_receive_count`` receives."""
    dlq_url = sqs.create_queue(QueueName=dead_letters)["QueueUrl"]
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": _queue_arn(sqs, dlq_url),
                    "maxReceiveCount": str(max_receive_count),
                }
            ),
        },
    )["QueueUrl"]
    return url, _queue_arn(sqs, url), dlq_url


def _queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


@dataclass
class LambdaContext:
    """What Lambda passes a handler as ``context`` (the fields Powertools reads)."""

    function_name: str = "skypi-indexer"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:skypi-indexer"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/skypi-indexer"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_event(
    messages: list[MessageTypeDef], resources: Resources, queue_arn: str = ""
) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn or resources.queue_arn,
                "awsRegion": resources.region,
            }
            for m in messages
        ]
    }


class Poller:
    """Receives batches from the queue and invokes the handler, as Lambda would: a message is
    deleted only when the handler succeeded for it; reported or raised failures stay in the
    queue and return after the visibility timeout."""

    def __init__(
        self,
        sqs: SQSClient,
        resources: Resources,
        handler: Handler,
        wait_seconds: int = 1,
        *,
        queue: tuple[str, str] | None = None,
    ) -> None:
        self.sqs = sqs
        self.resources = resources
        self.handler = handler
        self.wait_seconds = wait_seconds
        # (url, ARN): the index events by default, or another queue (the invalidations)
        self.queue_url, self.queue_arn = queue or (resources.queue_url, resources.queue_arn)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def receive(self, limit: int = BATCH_SIZE, wait: int | None = None) -> list[MessageTypeDef]:
        """Up to ``limit`` messages (SQS gives 10 at most), waiting up to ``wait`` seconds
        (``wait_seconds`` by default) while the queue is empty: the batch to invoke with."""
        received = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=limit,
            WaitTimeSeconds=self.wait_seconds if wait is None else wait,
            MessageSystemAttributeNames=["All"],
        )
        return received.get("Messages", [])

    def poll_once(self) -> int:
        """One receive-invoke-delete round; the number of messages handled successfully."""
        messages = self.receive()
        if not messages:
            return 0
        try:
            event = sqs_event(messages, self.resources, self.queue_arn)
            response = self.handler(event, LambdaContext())
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("the indexer failed on a batch of %d; all will be retried", len(messages))
            return 0
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(done)

    def drain(self, quiet_rounds: int = 2) -> int:
        """Poll until the queue has been empty ``quiet_rounds`` times in a row (tests)."""
        handled = quiet = 0
        while quiet < quiet_rounds:
            count = self.poll_once()
            handled += count
            quiet = quiet + 1 if count == 0 else 0
        return handled

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="skypi-sqs-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.wait_seconds + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # the emulator must outlive a hiccup, as Lambda's poller does
                log.exception("polling the queue failed; retrying")
                time.sleep(1)


def start_moto(host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """A moto server on loopback, in this process; returns it and its endpoint URL."""
    import logging as _logging

    from moto.server import ThreadedMotoServer

    _emulate_delete_marker_events()
    _emulate_composite_checksums_on_head()
    _emulate_atomic_conditional_writes()
    _list_moto_services_once()
    _logging.getLogger("werkzeug").setLevel(_logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


def _list_moto_services_once() -> None:
    """moto's server finds each request's service under one lock, listing moto's own package
    folder (a ``stat`` of each of its ~150 service folders) every time: under a burst of
    requests that lock is where they queue. The folder does not change while the server
    runs, so it is listed once (once per process)."""
    from moto import backends

    original = backends.list_of_moto_modules
    if getattr(original, "_skypi_listed_once", False):
        return
    services = tuple(original())

    def list_of_moto_modules() -> tuple[str, ...]:
        return services

    list_of_moto_modules._skypi_listed_once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules


_CONDITIONAL_WRITES = threading.Lock()


def _emulate_atomic_conditional_writes() -> None:
    """Real S3 checks a conditional write's ``If-Match`` / ``If-None-Match`` and stores the
    object as one step: of two writes on one ETag, one succeeds and the other gets 412
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). moto
    5.2 checks, then stores, with no lock between, so under load two compare-and-swaps on one
    ETag can both succeed (a lost update that real S3 never makes). This makes each
    conditional put or delete one step, as S3's is (once per process)."""
    from moto.s3.responses import S3Response

    for name in ("put_object", "delete_object"):
        original = getattr(S3Response, name)
        if getattr(original, "_skypi_atomic", False):
            continue

        def atomic(self: S3Response, *args: Any, _original: Any = original) -> Any:
            if self.headers.get("If-Match") or self.headers.get("If-None-Match"):
                with _CONDITIONAL_WRITES:
                    return _original(self, *args)
            return _original(self, *args)

        atomic._skypi_atomic = True  # type: ignore[attr-defined]
        setattr(S3Response, name, atomic)


def _emulate_delete_marker_events() -> None:
    """Real S3 sends ``ObjectRemoved:DeleteMarkerCreated`` when an object in a versioned bucket
    is deleted; moto 5.2 sends nothing, so ``aws s3 rm`` would never reach the indexer. This
    adds the event where moto creates the marker (once per process)."""
    from moto.s3 import notifications
    from moto.s3.models import S3Backend

    original = S3Backend._set_delete_marker
    if getattr(original, "_skypi_emits_event", False):
        return

    def set_delete_marker(self: S3Backend, bucket_name: str, key_name: str) -> Any:
        bucket = self.get_bucket(bucket_name)
        deleted = bucket.keys.get(key_name)
        marker = original(self, bucket_name, key_name)
        if deleted is not None and not isinstance(deleted, type(marker)):
            notifications.send_event(
                self.account_id,
                notifications.S3NotificationEvent.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
                bucket,
                deleted,
            )
        return marker

    set_delete_marker._skypi_emits_event = True  # type: ignore[attr-defined]
    S3Backend._set_delete_marker = set_delete_marker  # type: ignore[method-assign]


def _emulate_composite_checksums_on_head() -> None:
    """Real S3 answers a HEAD (with checksum mode) of a multipart object whose parts carried
    SHA-256 checksums with the checksum of the part checksums, suffixed ``-<parts>``, and
    ``x-amz-checksum-type: COMPOSITE``; moto 5.2 does so on GET but sends the bare value on
    HEAD, which reads as a whole-object SHA-256 that no bytes match. This adds the suffix and
    the type on HEAD, as on GET (once per process)."""
    from moto.s3.responses import S3Response

    original = S3Response.head_object
    if getattr(original, "_skypi_composite", False):
        return

    def head_object(
        self: S3Response, bucket_name: str, query: Any, key_name: str, headers: Any
    ) -> Any:
        status, response_headers, body = original(self, bucket_name, query, key_name, headers)
        if status == 200 and headers.get("x-amz-checksum-mode") == "ENABLED":
            version = query.get("versionId", [None])[0]
            key = self.backend.head_object(bucket_name, key_name, version)
            kind = getattr(key, "checksum_type", None)
            if key is not None and key.checksum_algorithm and kind:
                name = f"x-amz-checksum-{key.checksum_algorithm.lower()}"
                if kind == "COMPOSITE" and name in response_headers:
                    response_headers[name] = f"{key.checksum_value}-{key.checksum_parts}"
                response_headers["x-amz-checksum-type"] = kind
        return status, response_headers, body

    head_object._skypi_composite = True  # type: ignore[attr-defined]
    S3Response.head_object = head_object  # type: ignore[method-assign]


class KeyValueStoreEmulation:
    """The part of CloudFront KeyValueStore's API skypi uses (DescribeKeyValueStore,
    UpdateKeys, ListKeys), with the limits AWS applies and moto does not emulate: a key of at
    most 512 bytes, a value of at most 1 KB, 5 MB per store, 50 changes per call, and the
    store's ETag as the precondition. A refused call changes nothing, as on AWS; deleting a
    key that is not there is no error (the token sync relies on it too)."""

    MAX_CHANGES = 50

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.version = 0

    @property
    def size(self) -> int:
        """Keys and values, in bytes: what counts against the 5 MB."""
        return sum(len(k.encode()) + len(v.encode()) for k, v in self.items.items())

    def describe_key_value_store(self, KvsARN: str) -> dict[str, Any]:
        return {
            "ETag": f"v{self.version}",
            "ItemCount": len(self.items),
            "TotalSizeInBytes": self.size,
            "KvsARN": KvsARN,
        }

    def list_keys(
        self, KvsARN: str, NextToken: str | None = None, MaxResults: int = 50
    ) -> dict[str, Any]:
        """A page of at most ``MaxResults`` (1 to 50) items, in key order; its NextToken the
        last key given."""
        keys = sorted(k for k in self.items if NextToken is None or k > NextToken)[:MaxResults]
        page: dict[str, Any] = {"Items": [{"Key": k, "Value": self.items[k]} for k in keys]}
        if len(keys) == MaxResults and keys[-1] != max(self.items):
            page["NextToken"] = keys[-1]
        return page

    def update_keys(
        self,
        KvsARN: str,
        IfMatch: str,
        Puts: list[dict[str, str]] | None = None,
        Deletes: list[dict[str, str]] | None = None,
    ) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        def refuse(code: str, message: str) -> ClientError:
            return ClientError({"Error": {"Code": code, "Message": message}}, "UpdateKeys")

        puts, deletes = Puts or [], Deletes or []
        if IfMatch != f"v{self.version}":
            raise refuse("ConflictException", "the store changed: describe it again")
        if len(puts) + len(deletes) > self.MAX_CHANGES:
            raise refuse("ValidationException", f"at most {self.MAX_CHANGES} keys per call")
        after = dict(self.items)
        for put in puts:
            if len(put["Key"].encode()) > EDGE_MAX_KEY_BYTES:
                raise refuse("ValidationException", f"key longer than {EDGE_MAX_KEY_BYTES} bytes")
            if len(put["Value"].encode()) > EDGE_MAX_VALUE_BYTES:
                raise refuse(
                    "ValidationException", f"value longer than {EDGE_MAX_VALUE_BYTES} bytes"
                )
            after[put["Key"]] = put["Value"]
        for delete in deletes:
            after.pop(delete["Key"], None)
        if sum(len(k.encode()) + len(v.encode()) for k, v in after.items()) > EDGE_MAX_STORE_BYTES:
            raise refuse("ServiceQuotaExceededException", "the store would exceed 5 MB")
        self.items = after
        self.version += 1
        return {"ETag": f"v{self.version}", "ItemCount": len(after), "TotalSizeInBytes": self.size}


@dataclass
class _Invalidation:
    id: str
    reference: str
    paths: tuple[str, ...]
    done_at: float

    @property
    def wildcards(self) -> int:
        return sum(1 for p in self.paths if p.endswith("*"))


class CloudFrontEmulation:
    """CloudFront's CreateInvalidation with the limits AWS applies and moto does not: at most
    3,000 paths in one request (``BatchTooLarge``), at most 3,000 file paths and, apart from
    them, 15 wildcard paths in progress per distribution (``TooManyInvalidationsInProgress``),
    a CallerReference sent again with the same paths answering the invalidation it made, and
    with other paths ``InvalidationBatchAlreadyExists``; an unknown distribution is
    ``NoSuchDistribution``. An invalidation is in progress for ``takes`` seconds of ``clock``.
    AWS documents no request rate for the API; ``throttle(n)`` answers the next ``n`` calls
    with ``Throttling``, as a throttled call ends once botocore's retries give up."""

    def __init__(
        self,
        distributions: set[str],
        *,
        takes: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.distributions = distributions
        self.takes = takes
        self.clock = clock
        self.invalidations: dict[str, list[_Invalidation]] = {d: [] for d in distributions}
        self.calls = 0
        self._throttled = 0
        self._lock = threading.Lock()

    def throttle(self, calls: int) -> None:
        self._throttled = calls

    def in_progress(self, distribution: str) -> list[_Invalidation]:
        now = self.clock()
        return [i for i in self.invalidations.get(distribution, []) if i.done_at > now]

    def invalidated(self, distribution: str) -> list[str]:
        """The paths of the invalidations that have completed, in order."""
        now = self.clock()
        done = [i for i in self.invalidations.get(distribution, []) if i.done_at <= now]
        return [p for i in done for p in i.paths]

    def create_invalidation(
        self, DistributionId: str, InvalidationBatch: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            made = self._create(DistributionId, InvalidationBatch)
        return {
            "Location": f"https://cloudfront.amazonaws.com/2020-05-31/distribution/"
            f"{DistributionId}/invalidation/{made.id}",
            "Invalidation": {
                "Id": made.id,
                "Status": "InProgress" if made.done_at > self.clock() else "Completed",
                "InvalidationBatch": InvalidationBatch,
            },
        }

    def _create(self, distribution: str, batch: dict[str, Any]) -> _Invalidation:
        from skypi.core.invalidation import (
            MAX_FILE_PATHS_IN_PROGRESS,
            MAX_PATHS_PER_REQUEST,
            MAX_WILDCARD_PATHS_IN_PROGRESS,
            check_path,
        )

        if self._throttled:
            self._throttled -= 1
            raise _refusal("Throttling", "Rate exceeded")
        if distribution not in self.distributions:
            raise _refusal("NoSuchDistribution", "The specified distribution does not exist.")
        paths = tuple(batch["Paths"].get("Items", []))
        if batch["Paths"]["Quantity"] != len(paths):
            raise _refusal("InconsistentQuantities", "Quantity does not match the items")
        if len(paths) > MAX_PATHS_PER_REQUEST:
            raise _refusal("BatchTooLarge", "Invalidation batch specified is too large.")
        try:
            for path in paths:
                check_path(path)
        except ValueError as exc:
            raise _refusal("InvalidArgument", str(exc)) from None
        made = self.invalidations[distribution]
        again = next((i for i in made if i.reference == batch["CallerReference"]), None)
        if again is not None:
            if again.paths != paths:
                raise _refusal("InvalidationBatchAlreadyExists", "CallerReference reused")
            return again
        new = _Invalidation(uuid.uuid4().hex[:14].upper(), batch["CallerReference"], paths, 0)
        running = self.in_progress(distribution)
        files = sum(len(i.paths) - i.wildcards for i in running)
        wildcards = sum(i.wildcards for i in running)
        if (
            files + len(paths) - new.wildcards > MAX_FILE_PATHS_IN_PROGRESS
            or wildcards + new.wildcards > MAX_WILDCARD_PATHS_IN_PROGRESS
        ):
            raise _refusal(
                "TooManyInvalidationsInProgress",
                "You have exceeded the maximum number of allowable InProgress invalidation "
                "batch requests, or invalidation objects.",
            )
        new.done_at = self.clock() + self.takes
        made.append(new)
        return new


def _refusal(code: str, message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateInvalidation")
