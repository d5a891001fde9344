"""The one way skypi makes its botocore clients: retries and timeouts for every AWS service.

botocore directly, not boto3: boto3 would add s3transfer to every Lambda's cold start.
"""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.config import Config

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
