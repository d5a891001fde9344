"""The invalidator's batch, against an emulated CloudFront with AWS's limits: while CloudFront
is full, the rest of the batch waits without a call; a refusal of one batch alone does not
hold back the others."""

from __future__ import annotations

from typing import Any

from skypi.core.invalidation import Batch
from skypi.indexer.invalidator import process
from skypi.local.emulator import CloudFrontEmulation
from skypi.store.cdn import CloudFrontCdn

DISTRIBUTION = "E1"


def _event(*batches: Batch) -> dict[str, Any]:
    return {
        "Records": [{"messageId": f"m{i}", "body": b.to_message()} for i, b in enumerate(batches)]
    }


def _full(cloudfront: CloudFrontEmulation) -> None:
    paths = [f"/other/{i}" for i in range(3000)]
    cloudfront.create_invalidation(
        DistributionId=DISTRIBUTION,
        InvalidationBatch={"Paths": {"Quantity": 3000, "Items": paths}, "CallerReference": "x"},
    )


def test_while_cloudfront_is_full_the_rest_of_the_batch_waits_untried() -> None:
    cloudfront = CloudFrontEmulation({DISTRIBUTION}, clock=lambda: 0.0)
    _full(cloudfront)
    batches = [Batch((f"/packages/a/{i}.zip",)) for i in range(3)]
    answer = process(_event(*batches), CloudFrontCdn(DISTRIBUTION, cloudfront))
    assert answer["batchItemFailures"] == [{"itemIdentifier": f"m{i}"} for i in range(3)]
    assert cloudfront.calls == 2  # the one that filled it, and the first of these


def test_one_batch_refused_alone_does_not_hold_back_the_others() -> None:
    cloudfront = CloudFrontEmulation({DISTRIBUTION}, clock=lambda: 0.0)
    cdn = CloudFrontCdn(DISTRIBUTION, cloudfront)
    cdn.send(Batch(("/packages/a/1.zip",), "taken"))
    clash = Batch(("/packages/a/2.zip",), "taken")  # InvalidationBatchAlreadyExists
    fine = Batch(("/packages/a/3.zip",))
    answer = process(_event(clash, fine, Batch(("/packages/a/4.zip",))), cdn)
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m0"}]
    assert len(cloudfront.in_progress(DISTRIBUTION)) == 3


def test_a_message_that_is_no_batch_is_left_for_the_dead_letter_queue() -> None:
    cloudfront = CloudFrontEmulation({DISTRIBUTION}, clock=lambda: 0.0)
    event = {"Records": [{"messageId": "m0", "body": '{"paths": ["/a*b"], "reference": "r"}'}]}
    answer = process(event, CloudFrontCdn(DISTRIBUTION, cloudfront))
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m0"}]
    assert cloudfront.calls == 0
