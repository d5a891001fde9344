"""Trusted publishers in a DynamoDB table (the deployed index), beside the token table.

One table, two key spaces under the partition key ``kind``: ``publisher`` items (sort key: the
publisher's id, the record as JSON) and ``oidc-token`` items, one per exchanged OIDC token
(sort key: a digest of its issuer and ``jti``), created with a condition so a second exchange
of the same token fails, and deleted by DynamoDB's TTL (``ttl``) once the token has expired.
The API may only query the first and put into the second (``infra/auth.py``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from skypi.core.publishers import Publisher, publisher_from_json
from skypi.store.aws import DynamoTable
from skypi.store.publishers import pick

PUBLISHER = "publisher"
USED_TOKEN = "oidc-token"  # noqa: S105 - a key space, not a secret
# DynamoDB's TTL deletes "typically within a few days" of expiry, not at once; the condition
# on the put is what refuses a replay, and the item stays at least until the token expires.
TTL_MARGIN = timedelta(hours=1)


class DynamoPublisherRepository(DynamoTable):
    def all(self) -> list[Publisher]:
        records = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="#k = :k",
            ExpressionAttributeNames={"#k": "kind"},
            ExpressionAttributeValues={":k": {"S": PUBLISHER}},
        ):
            records += [publisher_from_json(json.loads(i["record"]["S"])) for i in page["Items"]]
        return sorted(records, key=lambda p: p.created)

    def add(self, publisher: Publisher) -> None:
        item: dict[str, Any] = {
            "kind": {"S": PUBLISHER},
            "id": {"S": publisher.id},
            "record": {"S": json.dumps(publisher.to_json())},
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(#i)",
                ExpressionAttributeNames={"#i": "id"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise KeyError(
                    f"this publisher is registered already (id {publisher.id})"
                ) from None
            raise

    def remove(self, publisher_id: str) -> Publisher:
        found = pick(self.all(), publisher_id)
        self.client.delete_item(
            TableName=self.table, Key={"kind": {"S": PUBLISHER}, "id": {"S": found.id}}
        )
        return found

    def use_once(self, key: str, until: datetime) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "kind": {"S": USED_TOKEN},
                    "id": {"S": key},
                    "ttl": {"N": str(int((until + TTL_MARGIN).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(#i)",
                ExpressionAttributeNames={"#i": "id"},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True
