"""Every case of a view's policy (tests/viewcases.py) on the AWS path: real pip, uv and poetry
talk to CloudFront as the synthesized template builds it (tests/cloudfront.py: the ``/view/*``
behaviour's own function under node, its origin group of the moto bucket then the view
Lambda's real handler), on a loopback port; the views are added, fed OSV data and explained
with ``skypi view ... --bucket``, and private names arrive as drop-ins the indexer Lambda takes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from skypi.api import viewhandler
from skypi.core.keys import view_file_key
from skypi.store.scheduler import REFRESH_EVENT
from tests.aws.conftest import Emulated, emulate
from tests.aws.test_view_cloudfront import cloudfront, distribution
from tests.aws.test_view_lambda import CONTEXT, lam, view_lambda
from tests.cloudfront import CloudFrontModel, serve
from tests.dists import wheel_bytes, wheel_name
from tests.e2e.conftest import BIN, client_env
from tests.e2e.test_conventions import poetry_bin as poetry_bin
from tests.e2e.test_views import _download, _uv_pin
from tests.loopback import Loopback
from tests.synth import Synth
from tests.test_edge_vectors import vector_token
from tests.upstream import StaticUpstream
from tests.viewcases import CASES, Case, Reads, check_root_listing, run_case, served, upstreams

pytestmark = pytest.mark.e2e
__all__ = [
    "cloudfront",
    "lam",
]  # fixtures of tests/aws/test_view_{cloudfront,lambda}.py


@dataclass
class Deployed(Reads):
    """The AWS path's :class:`~tests.viewcases.World`."""

    upstream: StaticUpstream
    flaky: StaticUpstream
    tmp: Path
    credentials: tuple[str, str]
    poetry: Path
    aws: Emulated
    model: CloudFrontModel
    front: Loopback | None = None

    def base(self) -> str:
        assert self.front is not None
        return self.front.url()

    def publish(self, name: str, version: str) -> None:
        filename = wheel_name(name, version)
        self.aws.drop(f"packages/{name}/{filename}", wheel_bytes(name, version))
        assert self.aws.poller.drain() >= 1

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "skypi"), *args], capture_output=True, text=True, timeout=120
        )
        return done.stdout + done.stderr

    def location(self) -> list[str]:
        return ["--bucket", self.aws.resources.bucket]

    def reserve(self, namespace: str) -> None:
        said = self.cli("namespace", "add", namespace, "--owner", "platform", *self.location())
        assert namespace in said, said

    def cached(self, view: str, project: str, filename: str) -> bool:
        return self.aws.store.head(view_file_key(view, project, filename)) is not None

    def start(self) -> None:
        self.front = serve(self.model).start()

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()


@pytest.fixture(scope="module")
def deployed(
    tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, synth: Synth, poetry_bin: Path
) -> Iterator[Deployed]:
    """One deployed index for the whole table (each case touches only its own projects)."""
    tmp = tmp_path_factory.mktemp("view-cases-aws")
    reader = ("__token__", vector_token("reader"))
    with upstreams() as (upstream, flaky), pytest.MonkeyPatch.context() as monkeypatch:
        aws = emulate(moto_endpoint, monkeypatch)
        view_lambda(aws, moto_endpoint, monkeypatch)
        model = distribution(synth, aws)
        world = Deployed(upstream, flaky, tmp, reader, poetry_bin, aws, model)
        with served(world):
            yield world


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_through_cloudfront(deployed: Deployed, case: Case) -> None:
    run_case(deployed, case)


def test_the_view_root_lists_private_and_served_names_through_cloudfront(
    deployed: Deployed,
) -> None:
    check_root_listing(deployed)


def test_a_cooldown_ends_by_time_alone_for_pip_and_uv_through_cloudfront(
    cloudfront: CloudFrontModel, lam: Any, upstream: StaticUpstream, tmp_path: Path
) -> None:
    """The view Lambda's clock is the test's: when 2.0's cooldown ends, the timer's event
    (EventBridge Scheduler's) makes the stored page again, and the clients are given the new
    page by the bucket, with no upload anywhere."""
    _, clock, schedule = lam
    upstream.add_wheel("demo", "1.0", clock.now - timedelta(days=30))
    upstream.add_wheel("demo", "2.0", clock.now - timedelta(days=6))
    env = client_env(tmp_path)
    with serve(cloudfront) as front:
        index = (
            f"http://__token__:{vector_token('reader')}@127.0.0.1:{front.port}/view/safe/simple/"
        )
        assert _download(index, "demo", env, tmp_path / "before") == [wheel_name("demo", "1.0")]
        assert _uv_pin(index, "demo", env, tmp_path) == "1.0"
        assert "at(" in schedule()["ScheduleExpression"]  # armed for 2.0's day
        clock.now += timedelta(days=1, seconds=1)
        assert viewhandler.handler(dict(REFRESH_EVENT), CONTEXT) == {"made": 1}
        after = _download(index, "demo", env, tmp_path / "after")
        assert after == [wheel_name("demo", "2.0")]
        assert _uv_pin(index, "demo", env, tmp_path) == "2.0"
    assert upstream.requests.count("/simple/demo/") == 1  # made again from the page it kept
