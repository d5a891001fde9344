"""The token-sync Lambda: DynamoDB stream of the token table → the edge's KeyValueStore.

A failed batch raises, so the event source retries it (bisecting, then giving up to its
failure destination); puts and deletes are idempotent, so a retry changes nothing twice.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from skypi import tracing
from skypi.edge_tokens.sync import KeyValueStoreWriter, changes

logger = Logger(service="skypi-token-sync")
tracing.route_logs(logger)
_writer: KeyValueStoreWriter | None = None


def _default_writer() -> KeyValueStoreWriter:
    global _writer
    if _writer is None:
        _writer = KeyValueStoreWriter(os.environ["SKYPI_KVS_ARN"])
    return _writer


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    puts, deletes = changes(event.get("Records", []))
    if puts or deletes:
        _default_writer().apply(puts, deletes)
    # Hashes only: no token ever passes through here.
    logger.info("token mirror updated", extra={"put": len(puts), "deleted": len(deletes)})
