"""S3 event notifications, as SQS delivers them, turned into indexer changes.

Pure: no I/O, so every odd case (test events, encoded keys, foreign prefixes) is a table test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from skypi.core.keys import PACKAGES_PREFIX
from skypi.indexer.changes import Change, Gone, Landed


class MalformedMessage(ValueError):
    """The SQS message is not an S3 event notification; retrying it will not help."""


@dataclass
class Decoded:
    changes: list[Change] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key or event, why)


def decode_notification(body: str) -> Decoded:
    """The changes one S3 notification (an SQS message body) announces.

    >>> body = '{"Records": [{"eventName": "ObjectCreated:Put",'
    >>> body += ' "s3": {"object": {"key": "packages/demo/demo-1.0%2Blocal.tar.gz"}}}]}'
    >>> [change.key for change in decode_notification(body).changes]
    ['packages/demo/demo-1.0+local.tar.gz']
    >>> decode_notification('{"Event": "s3:TestEvent", "Bucket": "b"}').skipped
    [('s3:TestEvent', 'a test event S3 sends when notifications are configured')]
    """
    try:
        message = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise MalformedMessage("not a JSON object")
    decoded = Decoded()
    if "Records" not in message:
        event = str(message.get("Event", "unknown"))
        if event == "s3:TestEvent":
            decoded.skipped.append(
                (event, "a test event S3 sends when notifications are configured")
            )
            return decoded
        raise MalformedMessage(f"no Records in a {event!r} message")
    for record in message["Records"]:
        try:
            name = str(record["eventName"])
            key = unquote_plus(str(record["s3"]["object"]["key"]))
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(f"a record without eventName or s3.object.key: {exc}") from exc
        if not key.startswith(PACKAGES_PREFIX):
            decoded.skipped.append((key, f"outside {PACKAGES_PREFIX}"))
        elif name.startswith("ObjectCreated:"):
            decoded.changes.append(Landed(key))
        elif name.startswith("ObjectRemoved:"):
            decoded.changes.append(Gone(key))
        else:
            decoded.skipped.append((key, f"{name} does not change the index"))
    return decoded
