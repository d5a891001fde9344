"""An invocation in its own process, stopped dead at a chosen write (SIGKILL: no ``finally``,
no cleanup), as Lambda stops a function at its timeout or a machine loses power.

``python -m tests.faults.child lambda KILL_AT`` runs the real indexer handler on the SQS event
read from stdin, against the bucket and endpoint in the environment; ``python -m
tests.faults.child serve KILL_AT FOLDER`` runs the start-up pass of ``skypi serve`` on a folder.
Either is killed just before its ``KILL_AT``-th write (1-based) reaches storage; one that
finishes first prints its answer and exits 0.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from skypi.store.base import Body, ObjectInfo
from skypi.store.local import LocalStore

WRITES = {"PutObject", "DeleteObject", "CopyObject"}


class Countdown:
    def __init__(self, kill_at: int) -> None:
        self.left = kill_at

    def write(self) -> None:
        self.left -= 1
        if self.left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


def _lambda(kill_at: int) -> None:
    from skypi.indexer import handler as indexer_handler
    from skypi.indexer.service import Indexer
    from skypi.local.emulator import LambdaContext
    from skypi.store.s3 import S3Store

    countdown = Countdown(kill_at)
    store = S3Store.from_environment()

    def before_send(event_name: str, **_: Any) -> None:
        if event_name.rsplit(".", 1)[-1] in WRITES:
            countdown.write()

    store.client.meta.events.register_first("before-send", before_send)
    indexer_handler._indexer = Indexer(store)
    event = json.loads(sys.stdin.read())
    print(json.dumps(indexer_handler.handler(event, LambdaContext())))


class _Dying(LocalStore):
    countdown = Countdown(1 << 30)

    def put(self, key: str, body: Body, **kwargs: Any) -> ObjectInfo:
        self.countdown.write()
        return super().put(key, body, **kwargs)

    def delete(self, key: str) -> None:
        self.countdown.write()
        super().delete(key)


def _serve(kill_at: int, folder: Path) -> None:
    from skypi.indexer.service import Indexer
    from skypi.local.startup import reconcile

    _Dying.countdown = Countdown(kill_at)
    store = _Dying(folder)
    report = reconcile(store, Indexer(store))
    print(json.dumps({"added": report.outcome.added}))


if __name__ == "__main__":
    if sys.argv[1] == "lambda":
        _lambda(int(sys.argv[2]))
    else:
        _serve(int(sys.argv[2]), Path(sys.argv[3]))
