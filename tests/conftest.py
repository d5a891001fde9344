from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from skypi.core.tokens import TokenRecord, new_token
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
from tests.oidc import Issuer, Tls, make_tls, running_issuer
from tests.synth import synth
from tests.upstream import StaticUpstream

__all__ = ["synth"]  # the session's one synthesis, for tests/infra and tests/iam


def basic(token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"__token__:{token}".encode()).decode()}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "packages"
    path.mkdir()
    return path


@pytest.fixture
def store(folder: Path) -> LocalStore:
    return LocalStore(folder)


@pytest.fixture
def upstream() -> Iterator[StaticUpstream]:
    """A static upstream index on a loopback port, for views to read."""
    server = StaticUpstream().start()
    yield server
    server.stop()


def add_token(store: LocalStore, *scopes: str, projects: set[str] | None = None) -> str:
    token = new_token()
    TokenRepository(store).add(
        TokenRecord.create(token, name="test", scopes=set(scopes), projects=projects)
    )
    return token


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server on loopback for the whole run (as ``skypi dev`` starts it); each test
    makes its own bucket."""
    from skypi.local.emulator import start_moto

    server, endpoint = start_moto()
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A CA and a loopback server certificate (the Trusted Publishing tests' HTTPS)."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def issuer(tls: Tls) -> Iterator[Issuer]:
    """A local OIDC issuer over HTTPS, standing in for GitHub Actions or GitLab."""
    with running_issuer(tls) as issuer:
        yield issuer
