"""The benchmarks model the AWS path with the stack's own settings, read from this template."""

from __future__ import annotations

from bench.burst import QueueSettings, indexer_queue_settings

from tests.synth import Synth


def test_the_burst_takes_the_indexers_sqs_settings_from_the_template(synth: Synth) -> None:
    """The indexer's event source mapping and queue as synthesized; with no maximum
    concurrency set, Lambda starts a standard queue's poll with five concurrent batches
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html), the
    concurrency the burst models."""
    settings = indexer_queue_settings(synth.template)
    assert settings == QueueSettings(
        batch_size=10,
        batching_window_s=1,
        max_concurrency=None,
        visibility_timeout_s=720,
        function_timeout_s=120,
        reserved_concurrency=None,
    )
    assert settings.concurrency == 5
