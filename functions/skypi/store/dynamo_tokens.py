"""Token records in a DynamoDB table (the deployed index), keyed by the token's SHA-256.

Each item holds the record (JSON), its id, the value the CloudFront KeyValueStore mirrors for
the edge (``edge``), and when the token was last used. The table's stream feeds the function
that keeps the KeyValueStore in step (``skypi.edge_tokens``), so a create or revoke reaches the
edge within seconds.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from skypi.core.tokens import TokenRecord
from skypi.store.aws import DynamoTable
from skypi.store.tokens import MINTED_KEPT

log = logging.getLogger("skypi.tokens")
TOUCH_EVERY = timedelta(hours=1)  # last use is recorded at most this often per token


class DynamoTokenRepository(DynamoTable):
    @staticmethod
    def _record(item: dict[str, Any]) -> TokenRecord:
        return TokenRecord.from_json(json.loads(item["record"]["S"]))

    def find(self, digest: str) -> TokenRecord | None:
        item = self.client.get_item(TableName=self.table, Key={"hash": {"S": digest}}).get("Item")
        if item is None:
            return None
        self._touch(digest, item)
        return self._record(item)

    def _touch(self, digest: str, item: dict[str, Any]) -> None:
        """Record the last use, at most hourly (a failed write never fails the request)."""
        now = datetime.now(UTC)
        last = item.get("last_used", {}).get("S")
        if last and datetime.fromisoformat(last) > now - TOUCH_EVERY:
            return
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"hash": {"S": digest}},
                UpdateExpression="SET last_used = :now",
                ConditionExpression="attribute_exists(#h)",
                ExpressionAttributeNames={"#h": "hash"},
                ExpressionAttributeValues={":now": {"S": now.isoformat()}},
            )
        except ClientError as exc:
            log.info("could not record a token's last use: %s", exc.response["Error"]["Code"])

    def all(self) -> list[TokenRecord]:
        records = []
        for page in self.client.get_paginator("scan").paginate(TableName=self.table):
            records += [self._record(item) for item in page.get("Items", [])]
        return sorted(records, key=lambda r: r.created)

    def last_used(self) -> dict[str, str]:
        """Token id -> when it was last used (ISO 8601), for ``skypi token list``."""
        used = {}
        for page in self.client.get_paginator("scan").paginate(TableName=self.table):
            for item in page.get("Items", []):
                if "last_used" in item:
                    used[item["id"]["S"]] = item["last_used"]["S"]
        return used

    def add(self, record: TokenRecord, *, overwrite: bool = False) -> None:
        item: dict[str, Any] = {
            "hash": {"S": record.hash},
            "id": {"S": record.id},
            "record": {"S": json.dumps(record.to_json())},
        }
        if record.user is None and record.publisher is None:
            # Only tokens read at the edge: htpasswd users and trusted publishers upload.
            item["edge"] = {"S": record.edge_value()}
        if record.publisher is not None and record.expires is not None:
            # Minted tokens live minutes; their audit record is kept for MINTED_KEPT.
            item["ttl"] = {"N": str(int((record.expires + MINTED_KEPT).timestamp()))}
        condition: dict[str, Any] = (
            {}
            if overwrite
            else {
                "ConditionExpression": "attribute_not_exists(#h)",
                "ExpressionAttributeNames": {"#h": "hash"},
            }
        )
        self.client.put_item(TableName=self.table, Item=item, **condition)

    def revoke(self, token_id: str) -> TokenRecord:
        """Remove the token whose id (or unique id prefix) is ``token_id``."""
        if not token_id:
            raise KeyError("give a token id (see 'skypi token list')")
        found = [r for r in self.all() if r.id.startswith(token_id)]
        if len(found) != 1:
            raise KeyError(
                f"no token with id {token_id!r}"
                if not found
                else f"{token_id!r} matches {len(found)} tokens; give more of the id"
            )
        self.client.delete_item(TableName=self.table, Key={"hash": {"S": found[0].hash}})
        return found[0]
