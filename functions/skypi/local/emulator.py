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


def provision(
    s3: S3Client,
    sqs: SQSClient,
    bucket: str,
    *,
    region: str = "us-east-1",
    visibility_timeout: int = VISIBILITY_TIMEOUT,
    dynamodb: DynamoDBClient | None = None,
) -> Resources:
    """A versioned bucket whose ``packages/`` events go to a queue with a dead-letter queue,
    and (given ``dynamodb``) the token table with its stream and the publisher table.

    Idempotent, so ``skypi dev`` can run it at every start."""
    table = f"{bucket}-tokens" if dynamodb is not None else ""
    if dynamodb is not None and table not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "hash", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "hash", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
    publishers = f"{bucket}-publishers" if dynamodb is not None else ""
    if dynamodb is not None and publishers not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(  # as infra/auth.py: kind (publisher | oidc-token) and id
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
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    dlq_url = sqs.create_queue(QueueName=f"{bucket}-index-dlq")["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=f"{bucket}-index-events",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    # One configuration per distribution suffix (S3 filters take one prefix and one suffix):
    # the indexer's own ``.metadata`` writes under packages/ must not wake it up again.
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
    return Resources(bucket, queue_url, queue_arn, dlq_url, region, table, publishers)


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


def sqs_event(messages: list[MessageTypeDef], resources: Resources) -> dict[str, Any]:
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
                "eventSourceARN": resources.queue_arn,
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
        self, sqs: SQSClient, resources: Resources, handler: Handler, wait_seconds: int = 1
    ) -> None:
        self.sqs = sqs
        self.resources = resources
        self.handler = handler
        self.wait_seconds = wait_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        """One receive-invoke-delete round; the number of messages handled successfully."""
        received = self.sqs.receive_message(
            QueueUrl=self.resources.queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if not messages:
            return 0
        try:
            response = self.handler(sqs_event(messages, self.resources), LambdaContext())
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        except Exception:
            log.exception("the indexer failed on a batch of %d; all will be retried", len(messages))
            return 0
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.resources.queue_url,
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
    _logging.getLogger("werkzeug").setLevel(_logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    bound_host, bound_port = server.get_host_and_port()
    return server, f"http://{bound_host}:{bound_port}"


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
    """The part of CloudFront KeyValueStore's API the token sync uses (DescribeKeyValueStore,
    UpdateKeys), with the limits AWS applies and moto does not emulate: a key of at most 512
    bytes, a value of at most 1 KB, 5 MB per store, 50 changes per call, and the store's ETag
    as the precondition. A refused call changes nothing, as on AWS."""

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
