"""The burst's arithmetic and its reading of the template (``bench/burst.py``)."""

from __future__ import annotations

from typing import Any

from bench.burst import indexer_queue_settings, listed_at, percentile


def _template(mapping: dict[str, Any], function: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Handler": "skypi.indexer.handler.handler", **(function or {})},
            },
            "Other": {"Type": "AWS::Lambda::Function", "Properties": {"Handler": "x.handler"}},
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 60}},
            "Mapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "Fn"},
                    "EventSourceArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                    **mapping,
                },
            },
        }
    }


def test_what_the_template_leaves_out_is_lambdas_documented_default() -> None:
    """Batch size 10 and no batching window for SQS
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html); without a
    maximum concurrency, the five concurrent batches Lambda starts with
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html)."""
    settings = indexer_queue_settings(_template({}))
    assert (settings.batch_size, settings.batching_window_s) == (10, 0)
    assert (settings.max_concurrency, settings.concurrency) == (None, 5)
    assert settings.visibility_timeout_s == 60


def test_a_maximum_concurrency_or_a_reserved_one_bounds_the_model() -> None:
    limited = _template({"ScalingConfig": {"MaximumConcurrency": 20}, "BatchSize": 50})
    assert indexer_queue_settings(limited).concurrency == 20
    reserved = _template({}, {"ReservedConcurrentExecutions": 3})
    assert indexer_queue_settings(reserved).concurrency == 3


def test_a_drop_is_listed_by_the_first_invocation_that_did_not_fail_it() -> None:
    calls = [
        {"returned": 5.0, "keys": ["a", "b"], "failed_keys": []},
        {"returned": 2.0, "keys": ["b", "c"], "failed_keys": ["c"]},
        {"returned": 9.0, "keys": ["c"], "failed_keys": []},
    ]
    assert listed_at(calls) == {"b": 2.0, "a": 5.0, "c": 9.0}


def test_percentiles_are_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert [percentile(values, q) for q in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([3.0], 99) == 3.0
