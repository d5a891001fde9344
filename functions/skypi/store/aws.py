"""The one way skypi makes its botocore clients: retries and timeouts for every AWS service.

botocore directly, not boto3: boto3 would add s3transfer to every Lambda's cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RETRIES = Config(
    retries={"mode": "standard", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=60,
    max_pool_connections=32,
)


def create_client(service: str, config: Config = RETRIES, **kwargs: Any) -> Any:
    """A client of ``service`` from the default session (credentials and region from the
    environment, as on Lambda)."""
    return botocore.session.get_session().create_client(service, config=config, **kwargs)


class DynamoTable:
    """One DynamoDB table, its client made on first use (a Lambda that never touches the
    table pays nothing for it)."""

    def __init__(self, table: str, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = cast("DynamoDBClient", create_client("dynamodb"))
        return self._client
