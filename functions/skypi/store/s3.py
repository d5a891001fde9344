"""The S3 adapter of the object-store port, on botocore (boto3 is not in the Lambda bundle).

- Create-only puts send ``If-None-Match: *`` and compare-and-swap sends ``If-Match``; S3 answers
  412 (or 409 when two conditional writes meet, or 404 when an ``If-Match`` target is gone), all
  of which are :class:`PreconditionFailed` here.
- Every object is written with the exact ``Content-Type`` and ``Cache-Control`` its key calls for
  (one rule, :mod:`skypi.core.http`), so S3 and CloudFront serve them as pip and uv expect.
- A put given the file's SHA-256 sends it as ``ChecksumSHA256``: S3 refuses bytes that do not
  match, and later HEADs return it, so the indexer need not read the file to hash it.
- Throttling (503 SlowDown) and 5xx answers are retried with backoff by botocore's standard
  retry mode.
- Every request, presigned ones included, is SigV4 on the bucket's regional virtual-host
  endpoint (``<bucket>.s3.<region>.amazonaws.com``): botocore's defaults would presign with
  SigV2 on the global host in the older regions, which new buckets refuse and which signs
  none of the create-only conditions. A custom endpoint (moto, ``skypi dev``) is addressed
  by path, since ``<bucket>.localhost`` resolves nowhere.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import hashlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError
from botocore.exceptions import ConnectionError as BotoConnectionError

from skypi.core.http import (
    cache_control_for_key,
    content_encoding_for_key,
    content_type_for_key,
)
from skypi.store.aws import RETRIES
from skypi.store.base import (
    Body,
    NotFound,
    ObjectInfo,
    Part,
    PreconditionFailed,
    SignedRequest,
    Unavailable,
    UploadConflict,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# us_east_1_regional_endpoint: botocore otherwise presigns us-east-1 on the global host.
SIGV4_REGIONAL = Config(
    signature_version="s3v4",
    s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
)
SIGV4_PATH = Config(signature_version="s3v4", s3={"addressing_style": "path"})
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
MARKER = "skypi-upload"  # object metadata: which direct upload stored this object
# A transfer that stopped part-way, or no answer after every retry. botocore's read timeouts
# are ``OSError``s, which the indexer would take for an unreadable file and refuse for good.
_CUT_SHORT = (HTTPClientError, BotoConnectionError, IncompleteReadError)
BODY_ATTEMPTS = 3  # whole-object reads whose body was cut short part-way


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _sha256_hex(checksum: str | None, checksum_type: str | None) -> str | None:
    """A whole-object SHA-256 from S3's base64 checksum; multipart composites are not one."""
    if not checksum or "-" in checksum or checksum_type == "COMPOSITE":
        return None
    try:
        return base64.b64decode(checksum, validate=True).hex()
    except binascii.Error:
        return None


def _hex(checksum: str | None) -> str | None:
    try:
        return base64.b64decode(checksum, validate=True).hex() if checksum else None
    except binascii.Error:
        return None


def _completed(part: Part) -> CompletedPartTypeDef:
    """A part as CompleteMultipartUpload takes it: with its checksum, which S3 wants back
    for an upload created with one."""
    completed: CompletedPartTypeDef = {"PartNumber": part.number, "ETag": part.etag}
    if part.sha256:
        completed["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(part.sha256)).decode()
    return completed


def s3_config(endpoint_url: str | None = None) -> Config:
    """Retries and signing for an S3 client: SigV4 on the regional virtual host on AWS, by
    path on a custom endpoint (moto)."""
    return RETRIES.merge(SIGV4_PATH if endpoint_url else SIGV4_REGIONAL)


def s3_client(**overrides: Any) -> S3Client:
    """The S3 client every skypi process uses: :func:`s3_config`, and the endpoint from
    ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` when set (botocore reads them itself).

    Made with botocore directly: boto3 adds nothing this needs and imports s3transfer, which
    costs the indexer Lambda ~0.15 s of its cold start."""
    endpoint = (
        overrides.get("endpoint_url")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    session = botocore.session.get_session()
    # botocore reads AWS_DEFAULT_REGION; Lambda also sets AWS_REGION. Without a region the
    # client signs for the global endpoint, which a bucket in another region answers with 307.
    region = session.get_config_variable("region") or os.environ.get("AWS_REGION")
    overrides.setdefault("region_name", region)
    client = session.create_client("s3", config=s3_config(endpoint), **overrides)
    return cast("S3Client", client)


class _Transfer:
    """An object's body as S3 sends it: a transfer cut short is :class:`Unavailable`."""

    def __init__(self, key: str, body: Any) -> None:
        self.key, self._body = key, body

    def read(self, amt: int | None = None) -> bytes:
        try:
            return cast(bytes, self._body.read(amt))
        except _CUT_SHORT as exc:
            raise Unavailable(f"{self.key}: {exc}") from exc

    def close(self) -> None:
        self._body.close()


class S3Store:
    """A :class:`~skypi.store.base.Store` over one bucket (and the two optional abilities)."""

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self._client = client

    @classmethod
    def from_environment(cls) -> S3Store:
        """The store a Lambda function or ``skypi dev`` process is configured for."""
        bucket = os.environ.get("SKYPI_BUCKET")
        if not bucket:
            raise RuntimeError("SKYPI_BUCKET is not set: name the bucket that holds the index")
        return cls(bucket)

    @property
    def client(self) -> S3Client:
        if self._client is None:  # created on first use, so importing this module stays cheap
            self._client = s3_client()
        return self._client

    def _info(self, key: str, response: Any) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            etag=response["ETag"],
            last_modified=response["LastModified"],
            sha256=_sha256_hex(response.get("ChecksumSHA256"), response.get("ChecksumType")),
        )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return self._info(key, response)

    def _get(self, key: str, **extra: Any) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise NotFound(key) from exc
            raise
        except _CUT_SHORT as exc:
            raise Unavailable(f"{key}: {exc}") from exc

    def get(self, key: str) -> tuple[ObjectInfo, bytes]:
        """The whole object. botocore retries a request, not a body that breaks once its
        answer has begun (a connection reset part-way): such a read is sent again, up to
        ``BODY_ATTEMPTS`` times in all, before it is :class:`Unavailable` (a page read cut
        short once would otherwise fail every change of its project in a batch)."""
        for attempt in range(1, BODY_ATTEMPTS + 1):
            response = self._get(key)
            try:
                with closing(_Transfer(key, response["Body"])) as body:
                    data = body.read()
            except Unavailable:
                if attempt == BODY_ATTEMPTS:
                    raise
                continue
            return self._info(key, response), data
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        response = self._get(key, Range=f"bytes={start}-{start + length - 1}")
        with closing(_Transfer(key, response["Body"])) as body:
            return body.read()

    def open(self, key: str, start: int = 0) -> AbstractContextManager[BinaryIO]:
        extra = {"Range": f"bytes={start}-"} if start else {}
        body = _Transfer(key, self._get(key, **extra)["Body"])
        return cast(AbstractContextManager[BinaryIO], closing(body))

    def put(
        self,
        key: str,
        body: Body,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        sha256: str | None = None,
    ) -> ObjectInfo:
        extra: dict[str, Any] = {}
        if if_none_match:
            extra["IfNoneMatch"] = "*"
        if if_match is not None:
            extra["IfMatch"] = if_match
        if sha256 is not None:
            extra["ChecksumAlgorithm"] = "SHA256"
            extra["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256)).decode()
        if encoding := content_encoding_for_key(key):  # a page's gzip variant
            extra["ContentEncoding"] = encoding
        if isinstance(body, bytes):
            size = len(body)
        else:
            start = body.tell()
            size = body.seek(0, os.SEEK_END) - start
            body.seek(start)
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type_for_key(key),
                CacheControl=cache_control_for_key(key),
                **extra,
            )
        except ClientError as exc:
            if (if_match is not None or if_none_match) and _code(exc) in _LOST_RACE:
                raise PreconditionFailed(key) from exc
            raise
        return ObjectInfo(key, size, response["ETag"], datetime.now(UTC), sha256)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        # A conditional delete (If-Match) removes only the version whose ETag it names: S3
        # answers 412 to another ETag and 404 when the key is gone, both a lost race here.
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html
        extra: dict[str, Any] = {"IfMatch": if_match} if if_match is not None else {}
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            if if_match is not None and _code(exc) in _LOST_RACE | _MISSING:
                raise PreconditionFailed(key) from exc
            raise

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=item["Size"],
                    etag=item["ETag"],
                    last_modified=item["LastModified"],
                )

    def folders(self, prefix: str) -> Iterator[str]:
        """ListObjectsV2 with the delimiter ``/``: the folders come back as its
        ``CommonPrefixes``, sorted, without the objects under them."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/"
        )
        for page in pages:
            for item in page.get("CommonPrefixes", []):
                yield item["Prefix"]

    # -- optional abilities -------------------------------------------------------------

    def restore_version(self, key: str, etag: str) -> bool:
        """Copy the newest earlier version with this ETag over the current one.

        Needs a versioned bucket. The copy keeps the bytes (and, for a single-part original,
        the ETag); the indexer recognises a copy with other ETag by its SHA-256."""
        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=key
        )
        for page in pages:
            for version in page.get("Versions", []):
                if version["Key"] != key or version.get("IsLatest"):
                    continue
                if version["ETag"] == etag:
                    self.client.copy_object(
                        Bucket=self.bucket,
                        Key=key,
                        CopySource={
                            "Bucket": self.bucket,
                            "Key": key,
                            "VersionId": version["VersionId"],
                        },
                        MetadataDirective="COPY",
                    )
                    return True
        return False

    def presigned_get_url(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        content_encoding: str | None = None,
    ) -> str:
        # GetObject's response-content-type and response-content-encoding overrides are
        # honoured only on signed requests, which a presigned URL is (docs/aws-runtime.md).
        params = {"Bucket": self.bucket, "Key": key}
        if content_type:
            params["ResponseContentType"] = content_type
        if content_encoding:
            params["ResponseContentEncoding"] = content_encoding
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    # -- direct uploads (skypi publish) --------------------------------------------------

    def presigned_put(
        self, key: str, sha256: str, size: int, marker: str, expires_in: int
    ) -> SignedRequest:
        """A create-only PUT bound to the key, the file's size and its SHA-256: the headers
        are signed, so S3 refuses other bytes and an existing key. ``marker`` names this
        upload."""
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        url = self.client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ChecksumSHA256": checksum,
                "ContentLength": size,
                "IfNoneMatch": "*",
                "ContentType": content_type_for_key(key),
                "CacheControl": cache_control_for_key(key),
                "Metadata": {MARKER: marker},
            },
            ExpiresIn=expires_in,
        )
        headers = {
            f"x-amz-meta-{MARKER}": marker,
            "content-length": str(size),  # S3 takes no chunked PUT: the length goes first
            "x-amz-checksum-sha256": checksum,
            "if-none-match": "*",
            "content-type": content_type_for_key(key),
            "cache-control": cache_control_for_key(key),
        }
        return SignedRequest("PUT", url, headers)

    def start_multipart(self, key: str, marker: str) -> str:
        response = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            ContentType=content_type_for_key(key),
            CacheControl=cache_control_for_key(key),
            Metadata={MARKER: marker},
            ChecksumAlgorithm="SHA256",  # each part then carries (and is checked against) one
        )
        return str(response["UploadId"])

    def marker_of(self, key: str) -> str | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return response.get("Metadata", {}).get(MARKER)

    def presigned_part(
        self, key: str, upload_id: str, number: int, sha256: str, size: int, expires_in: int
    ) -> SignedRequest:
        """One part, bound to its length and SHA-256 (both signed): S3 refuses other bytes,
        and a bucket with Object Lock refuses a part that carries no checksum."""
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        url = self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": number,
                "ChecksumSHA256": checksum,
                "ContentLength": size,
            },
            ExpiresIn=expires_in,
        )
        headers = {"content-length": str(size), "x-amz-checksum-sha256": checksum}
        return SignedRequest("PUT", url, headers)

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        """One part sent by this process, with its SHA-256 (S3 refuses other bytes)."""
        sha256 = hashlib.sha256(data).hexdigest()
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
        )
        return Part(number, response["ETag"], len(data), sha256)

    def uploaded_parts(self, key: str, upload_id: str) -> builtins.list[Part]:
        parts: builtins.list[Part] = []
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=key, UploadId=upload_id
        )
        try:
            for page in pages:
                parts += [
                    Part(p["PartNumber"], p["ETag"], p["Size"], _hex(p.get("ChecksumSHA256")))
                    for p in page.get("Parts", [])
                ]
        except ClientError as exc:
            if _code(exc) in {"NoSuchUpload", "404"}:
                raise NotFound(upload_id) from exc
            raise
        return parts

    def complete_multipart(self, key: str, upload_id: str, parts: builtins.list[Part]) -> None:
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [_completed(part) for part in sorted(parts, key=lambda p: p.number)]
                },
                IfNoneMatch="*",
            )
        except ClientError as exc:
            # 409: "re-initiate the multipart upload with CreateMultipartUpload and re-upload
            # each part" (S3 API reference, CompleteMultipartUpload, If-None-Match).
            if _code(exc) in {"ConditionalRequestConflict", "409"}:
                raise UploadConflict(key) from exc
            if _code(exc) in _LOST_RACE:
                raise PreconditionFailed(key) from exc
            if _code(exc) in {"NoSuchUpload", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"}:
                raise NotFound(f"{key}: {exc}") from exc
            raise

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) not in {"NoSuchUpload", "404"}:
                raise
