"""The API Lambda: the whole FastAPI app (uploads, admin, and the read routes) behind API
Gateway's HTTP API, over the S3 store.

Lambda caps both the request and the response at 6 MB, and API Gateway base64-encodes binary
bodies into that budget, so:

- an upload request above :data:`MAX_REQUEST_BYTES` is refused with a 413 naming the ways that
  take big files (``docs/aws-runtime.md`` shows how the figure was measured);
- a stored object above :data:`REDIRECT_OVER_BYTES` is answered with a redirect to a
  short-lived presigned S3 URL instead of through the function.

The module itself loads only what the handler's wrapper needs; the app, its S3 and DynamoDB
clients are built on the first request (once per container), and the X-Ray SDK only when
tracing is on.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths

from skypi import tracing
from skypi.api.settings import Settings
from skypi.core.constants import INDEX_URL_VARIABLE
from skypi.core.http import (
    LAMBDA_PAYLOAD_LIMIT,
    MAX_LAMBDA_REQUEST_BYTES,
    MAX_LAMBDA_RESPONSE_BYTES,
)
from skypi.core.negotiate import V1_JSON

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext
    from mangum import Mangum

MAX_REQUEST_BYTES = MAX_LAMBDA_REQUEST_BYTES
REDIRECT_OVER_BYTES = MAX_LAMBDA_RESPONSE_BYTES
DIRECT_HASH_SECONDS = 20  # of API Gateway's 30 s integration timeout
# A multipart upload carries no whole-file SHA-256, so the indexer hashes it: in the 105 s
# its 120 s invocation leaves, at the 85 MB/s S3 documents per connection (docs/aws-runtime.md).
DIRECT_UPLOAD_CEILING = 105 * 85_000_000

__all__ = ["LAMBDA_PAYLOAD_LIMIT", "MAX_REQUEST_BYTES", "REDIRECT_OVER_BYTES", "handler"]
logger = Logger(service="skypi-api")
tracing.route_logs(logger)
metrics = Metrics(namespace="skypi", service="api")  # uploads: skypi.api.metrics
_mangum: Mangum | None = None


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in {"1", "true", "yes", "on"}


def lambda_settings(bucket: str) -> Settings:
    """The API's settings on Lambda, from its environment."""
    from skypi.store.rebuilds import environment_delay

    return Settings(
        private=_flag("SKYPI_PRIVATE", False),
        max_upload_size=MAX_REQUEST_BYTES,
        max_request_size=MAX_REQUEST_BYTES,
        large_upload_hint=(
            "Publish larger files straight to storage with `skypi publish FILE` (up to "
            f"{DIRECT_UPLOAD_CEILING / 1e9:.1f} GB, resumable), or "
            f"`aws s3 cp FILE s3://{bucket}/packages/<project>/` "
            "(the index lists them within seconds)."
        ),
        redirect_over=REDIRECT_OVER_BYTES,
        direct_hash_seconds=DIRECT_HASH_SECONDS,
        max_direct_upload_size=DIRECT_UPLOAD_CEILING,
        oidc_audience=os.environ.get("SKYPI_OIDC_AUDIENCE") or Settings.oidc_audience,
        index_url=os.environ.get(INDEX_URL_VARIABLE) or None,
        address_in_pages=True,
        root_delay=environment_delay(),
    )


def _app() -> Mangum:
    global _mangum
    if _mangum is None:  # once per container, on first use
        from mangum import Mangum
        from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

        from skypi.api.app import create_app
        from skypi.api.metrics import UploadMetrics
        from skypi.api.uploads import UPLOAD_PATHS
        from skypi.store.cdn import CloudFrontCdn
        from skypi.store.dynamo_publishers import DynamoPublisherRepository
        from skypi.store.dynamo_tokens import DynamoTokenRepository
        from skypi.store.kvs import EdgeQuarantine
        from skypi.store.rebuilds import SqsRootRebuilds
        from skypi.store.s3 import S3Store

        store = S3Store.from_environment()
        table = os.environ.get("SKYPI_TOKEN_TABLE")
        tokens = DynamoTokenRepository(table) if table else None
        publisher_table = os.environ.get("SKYPI_PUBLISHER_TABLE")
        publishers = DynamoPublisherRepository(publisher_table) if publisher_table else None
        app = create_app(
            store,
            lambda_settings(store.bucket),
            tokens,
            CloudFrontCdn.from_environment(),
            publishers=publishers,
            edge=EdgeQuarantine.from_environment(),
            rebuilds=SqsRootRebuilds.from_environment(),
        )
        _mangum = Mangum(
            UploadMetrics(app, metrics, UPLOAD_PATHS),
            lifespan="off",
            # Pages go back as text; everything else (files, .metadata) as base64.
            text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, V1_JSON],
        )
    return _mangum


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracing.capture_lambda_handler("skypi-api")
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(_app()(event, context))  # type: ignore[arg-type]


if tracing.initialized_ahead():
    _app()
