"""The invalidation planner at CloudFront's limits (docs/deploy.md cites them): exact paths
for files, batches of at most 3,000 paths with at most 15 wildcards, and messages that carry a
batch to a later retry unchanged."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from skypi.core.edge import origin_uri
from skypi.core.invalidation import (
    MAX_FILE_PATHS_IN_PROGRESS,
    MAX_MESSAGE_BYTES,
    MAX_PATHS_PER_REQUEST,
    MAX_WILDCARD_PATHS_IN_PROGRESS,
    Batch,
    as_messages,
    check_path,
    invalidation_paths,
    plan,
)

CPU_WHEELS = [f"packages/torch/torch-2.{i}.0+cpu-cp312-cp312-linux_x86_64.whl" for i in range(8)]


def test_the_limits_are_cloudfronts() -> None:
    assert MAX_FILE_PATHS_IN_PROGRESS == 3_000
    assert MAX_WILDCARD_PATHS_IN_PROGRESS == 15
    assert MAX_PATHS_PER_REQUEST == 3_000


def test_eight_cpu_wheels_are_sixteen_exact_paths_in_one_batch() -> None:
    """Eight `+cpu` wheels once cost 16 wildcard paths, over the 15 CloudFront allows."""
    [batch] = plan(invalidation_paths(CPU_WHEELS))
    assert (batch.files, batch.wildcards) == (16, 0)
    assert batch.paths[:2] == (
        "/packages/torch/torch-2.0.0%2Bcpu-cp312-cp312-linux_x86_64.whl",
        "/packages/torch/torch-2.0.0%2Bcpu-cp312-cp312-linux_x86_64.whl.metadata",
    )
    assert all(path == origin_uri(unquote(path[1:])) for path in batch.paths)  # one spelling


@pytest.mark.parametrize(
    "key",
    [
        "packages/a/../b-1.0.tar.gz",
        "packages/a/./b-1.0.tar.gz",
        "packages/a//b-1.0.tar.gz",
        "packages/a/.b-1.0.tar.gz",
        "packages/a/b\x00-1.0.tar.gz",
        "auth/tokens.json",
        "simple/index.json",
    ],
)
def test_keys_the_edge_never_serves_are_not_invalidated(key: str) -> None:
    """Never cached, and a path CloudFront could refuse, failing the batch it is in."""
    assert invalidation_paths([key, "packages/a/a-1.0.tar.gz"]) == [
        "/packages/a/a-1.0.tar.gz",
        "/packages/a/a-1.0.tar.gz.metadata",
    ]


@pytest.mark.parametrize(
    "key",  # only distributions are served under packages/; their folders may be spelled anyhow
    ["packages/caf\u00e9 x/a-1.0.tar.gz", "packages/x~*!'()/a-1.0+cpu-py3-none-any.whl"],
)
def test_any_key_the_edge_serves_is_an_exact_path_cloudfront_takes(key: str) -> None:
    [path, metadata] = invalidation_paths([key])
    assert check_path(path) == path == origin_uri(key)
    assert metadata == origin_uri(key + ".metadata")


def test_a_metadata_key_is_not_doubled_and_repeats_are_dropped() -> None:
    paths = invalidation_paths(["packages/a/a-1.tar.gz", "packages/a/a-1.tar.gz.metadata"])
    assert paths == ["/packages/a/a-1.tar.gz", "/packages/a/a-1.tar.gz.metadata"]
    assert [b.paths for b in plan(["/a", "/a", "/b"])] == [("/a", "/b")]
    assert plan([]) == []


@pytest.mark.parametrize(
    ("count", "sizes"),
    [
        (MAX_PATHS_PER_REQUEST - 1, [2999]),
        (MAX_PATHS_PER_REQUEST, [3000]),
        (MAX_PATHS_PER_REQUEST + 1, [3000, 1]),
        (3 * MAX_PATHS_PER_REQUEST + 7, [3000, 3000, 3000, 7]),
    ],
)
def test_file_paths_split_at_three_thousand(count: int, sizes: list[int]) -> None:
    paths = [f"/packages/p/f-{i}.tar.gz" for i in range(count)]
    batches = plan(paths)
    assert [len(b.paths) for b in batches] == sizes
    assert [p for b in batches for p in b.paths] == paths  # every path once, in order


@pytest.mark.parametrize(
    ("count", "sizes"), [(14, [14]), (15, [15]), (16, [15, 1]), (31, [15, 15, 1])]
)
def test_wildcards_split_at_fifteen(count: int, sizes: list[int]) -> None:
    batches = plan([f"/packages/p{i}/*" for i in range(count)])
    assert [b.wildcards for b in batches] == sizes


def test_wildcards_and_files_share_a_batch_within_both_limits() -> None:
    paths = [f"/f{i}" for i in range(2990)] + [f"/w{i}*" for i in range(20)]
    batches = plan(paths)
    assert [(b.files, b.wildcards) for b in batches] == [(2990, 10), (0, 10)]
    assert all(len(b.paths) <= MAX_PATHS_PER_REQUEST for b in batches)


@pytest.mark.parametrize(
    "path",
    ["", "packages/a", "/a b", "/caf\u00e9", "/a*b", "/a~b", "/a%2bb", "/a%zz", "/a\x00", "/a#b"],
)
def test_what_cloudfront_would_refuse_is_refused_here(path: str) -> None:
    with pytest.raises(ValueError, match="invalidation path"):
        check_path(path)
    with pytest.raises(ValueError, match="invalidation path"):
        plan([path])


def test_a_batch_outside_the_limits_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="3,000"):
        Batch(tuple(f"/f{i}" for i in range(MAX_PATHS_PER_REQUEST + 1)))
    with pytest.raises(ValueError, match="15"):
        Batch(tuple(f"/w{i}*" for i in range(MAX_WILDCARD_PATHS_IN_PROGRESS + 1)))
    with pytest.raises(ValueError, match="one or more paths"):
        Batch(())
    with pytest.raises(ValueError, match="caller reference"):
        Batch(("/a",), reference="")


def test_a_batch_too_big_for_one_message_is_split_and_every_part_fits() -> None:
    paths = tuple(f"/packages/long/{'x' * 150}-1.{i}.tar.gz" for i in range(3_000))
    parts = as_messages(Batch(paths))
    assert len(parts) > 1
    assert all(len(p.to_message().encode()) <= MAX_MESSAGE_BYTES for p in parts)
    assert [path for part in parts for path in part.paths] == list(paths)
    assert len({p.reference for p in parts}) == len(parts)


def test_a_batch_survives_its_queue_message_unchanged() -> None:
    batch = plan(invalidation_paths(CPU_WHEELS))[0]
    assert Batch.from_message(batch.to_message()) == batch  # the same CallerReference too


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        '{"paths": "/a", "reference": "r"}',
        '{"paths": ["/a"]}',
        '{"paths": ["/a"], "reference": 1}',
        '{"paths": ["/a"], "reference": "r", "more": 1}',
        '{"paths": ["/a*b"], "reference": "r"}',
        '{"paths": [], "reference": "r"}',
        '{"paths": ["/a"], "reference": "../x"}',
    ],
)
def test_a_message_that_is_no_batch_is_refused(body: str) -> None:
    reasons = "not JSON|expected an object|must be|invalidation path|one or more|reference is"
    with pytest.raises(ValueError, match=reasons):
        Batch.from_message(body)
