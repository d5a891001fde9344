"""``skypi dev``: the AWS data path on this machine.

A moto server on loopback stands in for S3 and SQS, provisioned as the stack provisions them
(versioned bucket, ``packages/`` notifications to a queue with a dead-letter queue, the queue of
refused invalidations with its own). Pollers invoke the real indexer and invalidator Lambda
handlers with Lambda-shaped SQS events; CloudFront's invalidations go to an emulation that
applies AWS's limits (``CloudFrontEmulation``). The API app runs on
uvicorn over the S3 adapter with Lambda's upload ceiling, while its read routes stream pages and
files from the bucket as CloudFront would.

Everything lives in memory and ends with the process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

import boto3

from skypi.api.settings import Settings
from skypi.core.constants import ROOT_DELAY_VARIABLE
from skypi.core.tokens import Scope, TokenRecord, new_token
from skypi.local.access import AccessLog, access_logging
from skypi.local.emulator import CloudFrontEmulation, Poller, Resources, provision, start_moto
from skypi.local.serve import redact_logs, shown_host
from skypi.store.cdn import Cdn, CloudFrontCdn, SqsPendingInvalidations
from skypi.store.dynamo_publishers import DynamoPublisherRepository
from skypi.store.dynamo_tokens import DynamoTokenRepository
from skypi.store.rebuilds import SqsRootRebuilds, environment_delay
from skypi.store.s3 import S3Store, s3_config

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("skypi.dev")
DEV_DISTRIBUTION = "EDEVSKYPI"  # the emulated CloudFront's one distribution
INVALIDATION_SECONDS = 5.0  # how long an emulated invalidation is in progress
# moto accepts any credentials; these keep boto3 and the aws CLI from looking for real ones.
DEV_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    # A new project appears on /simple/ this many seconds after its upload (AWS: 30 s).
    ROOT_DELAY_VARIABLE: "5",
}


def _welcome(resources: Resources, endpoint: str, url: str, token: str | None) -> str:
    env = " ".join(
        f"{k}={v}" for k, v in DEV_ENVIRONMENT.items() if k.startswith("AWS_") and "EC2" not in k
    )
    bucket = resources.bucket
    lines = [
        "skypi dev: the AWS data path on this machine (emulated with moto, in memory)",
        f"  S3 and SQS   {endpoint}   bucket {bucket}",
        f"  index        {url}/simple/",
        "",
        "Drop a file in, as with a deployed stack:",
        f"  export {env}",
        f"  aws --endpoint-url {endpoint} s3 cp dist/PACKAGE.whl s3://{bucket}/packages/",
        "Install it a moment later:",
        f"  pip install --index-url {url}/simple/ PACKAGE",
        f"  uv pip install --index-url {url}/simple/ PACKAGE",
    ]
    if token:
        lines += [
            "Upload through the API (Lambda's limits apply):",
            f"  twine upload --repository-url {url}/legacy/ -u __token__ -p {token} dist/*",
            f"  (an admin token made for this session: {token})",
        ]
    return "\n".join(lines)


def _start_pollers(
    sqs: SQSClient, resources: Resources, store: S3Store, index_url: str
) -> tuple[Cdn, SqsRootRebuilds, list[Poller]]:
    """The indexer's and the invalidator's pollers, started, the CDN the API tells and where
    it asks for a rebuild of the root listing.

    CloudFront's invalidations as the stack has them: the API and the indexer invalidate
    deleted and restored files at an emulated CloudFront that applies AWS's limits, and what
    it refuses goes on the invalidation queue, which the invalidator handler drains. Both
    handlers are given these, as Lambda would give them their environment, with the index's
    address as the stack gives both functions theirs (pages for people name it)."""
    from skypi.indexer import handler as indexer_handler
    from skypi.indexer import invalidator
    from skypi.indexer.service import Indexer

    cloudfront = CloudFrontEmulation({DEV_DISTRIBUTION}, takes=INVALIDATION_SECONDS)
    pending = SqsPendingInvalidations(resources.invalidation_queue_url, sqs)
    cdn = CloudFrontCdn(DEV_DISTRIBUTION, cloudfront, pending)
    # The root listing as on AWS: rebuilt by a delayed message on the indexer's queue.
    rebuilds = SqsRootRebuilds(resources.queue_url, sqs)
    indexer_handler._indexer = Indexer(
        store,
        cdn=cdn,
        workers=4,
        index_url=index_url,
        rebuilds=rebuilds,
        root_delay=environment_delay(),
    )
    invalidator._cdn = CloudFrontCdn(DEV_DISTRIBUTION, cloudfront)
    # The handlers log JSON lines as on Lambda; once is enough.
    for logger in (indexer_handler.logger, invalidator.logger):
        logging.getLogger(logger.name).propagate = False
    queue = (resources.invalidation_queue_url, resources.invalidation_queue_arn)
    pollers = [
        Poller(sqs, resources, indexer_handler.handler),
        Poller(sqs, resources, invalidator.handler, queue=queue),
    ]
    for poller in pollers:
        poller.start()
    return cdn, rebuilds, pollers


def dev(args: argparse.Namespace) -> int:
    import uvicorn

    from skypi.api.app import create_app
    from skypi.api.handler import MAX_REQUEST_BYTES, lambda_settings

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    access_logging()
    redact_logs()
    logging.getLogger("botocore").setLevel(logging.WARNING)
    for name, value in DEV_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    server, endpoint = start_moto(args.host, args.s3_port)
    # The handlers find the bucket and endpoint as on Lambda: in their environment.
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["SKYPI_BUCKET"] = args.bucket
    s3 = boto3.client("s3", endpoint_url=endpoint, config=s3_config(endpoint))
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    resources = provision(s3, sqs, args.bucket, dynamodb=dynamodb)
    os.environ["SKYPI_TOKEN_TABLE"] = resources.token_table
    os.environ["SKYPI_PUBLISHER_TABLE"] = resources.publisher_table
    store = S3Store(args.bucket, s3)
    tokens = DynamoTokenRepository(resources.token_table, dynamodb)
    token = None
    if not args.no_auth:
        token = new_token()
        tokens.add(TokenRecord.create(token, name="skypi dev", scopes={Scope.ADMIN}, projects=None))
    url = f"http://{shown_host(args.host)}:{args.port}"
    cdn, rebuilds, pollers = _start_pollers(sqs, resources, store, url)
    lambda_limits = lambda_settings(args.bucket)
    settings = Settings(
        private=args.private,
        upload_auth=not args.no_auth,
        max_upload_size=MAX_REQUEST_BYTES,
        max_request_size=lambda_limits.max_request_size,
        large_upload_hint=lambda_limits.large_upload_hint,
        index_url=url,
        root_delay=lambda_limits.root_delay,
    )
    print(_welcome(resources, endpoint, url, token), file=sys.stderr, flush=True)
    publishers = DynamoPublisherRepository(resources.publisher_table, dynamodb)
    app = create_app(store, settings, tokens, cdn, publishers=publishers, rebuilds=rebuilds)
    config = uvicorn.Config(
        app if args.no_access_log else AccessLog(app),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,  # skypi's own (AccessLog), as skypi serve logs requests
    )
    web = uvicorn.Server(config)  # configures uvicorn's log handlers: then redact them
    redact_logs()
    try:
        web.run()
    finally:
        for poller in pollers:
            poller.stop()
        server.stop()
    return 0
