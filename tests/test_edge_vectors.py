"""The Python read path against the shared edge vectors (``spec/edge-vectors.json``)."""

from __future__ import annotations

import base64
import errno
import gzip
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import canonicalize_name

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.edge import decide, origin_uri
from skypi.core.keys import PROJECT_PAGE, recognise
from skypi.core.tokens import TokenRecord
from skypi.core.views import parse_policy
from skypi.indexer.admin import Admin
from skypi.indexer.service import Indexer, Landed
from skypi.indexer.views import Views
from skypi.store.base import ObjectInfo
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
from tests.asgi import Request, call
from tests.dists import wheel_bytes, wheel_name

SPEC = json.loads((Path(__file__).parents[1] / "spec" / "edge-vectors.json").read_text())
MODES = ("public", "private")


def vector_token(name: str) -> str:
    return f"skypi_vector-{name}"


def expand_credentials(value: str) -> str:
    """``{basic:NAME}`` (a whole header) and ``{basic-value:NAME}`` (its base64 value) for the
    vector token ``NAME``."""

    def value_of(match: re.Match[str]) -> str:
        return base64.b64encode(f"__token__:{vector_token(match.group(1))}".encode()).decode()

    value = re.sub(r"\{basic:([^}]+)\}", lambda m: "Basic " + value_of(m), value)
    return re.sub(r"\{basic-value:([^}]+)\}", value_of, value)


def install_tokens(store: LocalStore) -> None:
    """The fixture's tokens, as `skypi token create` (and revoke) would leave them."""
    repo = TokenRepository(store)
    for name, spec in SPEC["fixture"]["tokens"].items():
        expires = datetime(2020, 1, 1, tzinfo=UTC) if spec.get("expired") else None
        record = TokenRecord.create(
            vector_token(name),
            name=name,
            scopes=set(spec["scopes"]),
            projects=set(spec["projects"]) if spec["projects"] else None,
            namespaces=set(spec["namespaces"]) if spec.get("namespaces") else None,
            expires=expires,
        )
        repo.add(record)
        if spec.get("revoked"):
            repo.revoke(record.id)


class StatusUnreadable(LocalStore):
    """A folder whose projects' statuses cannot be read (their JSON pages): the vectors'
    ``fault`` "status"."""

    def get(self, key: str) -> tuple[ObjectInfo, bytes]:
        found = recognise(key)
        if found is not None and found.family is PROJECT_PAGE and found.page_kind == "json":
            raise OSError(errno.EIO, "Input/output error", key)
        return super().get(key)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, dict[str, Any]]:
    root = tmp_path_factory.mktemp("edge") / "packages"
    store = LocalStore(root)
    indexer = Indexer(store)
    for wheel in SPEC["fixture"]["wheels"]:
        name = wheel_name(wheel["name"], wheel["version"])
        key = f"packages/{canonicalize_name(wheel['name'])}/{name}"
        store.put(key, wheel_bytes(wheel["name"], wheel["version"]))
        assert indexer.apply([Landed(key)]).added == [name]
    for project in SPEC["fixture"]["quarantined"]:
        Admin(indexer).set_status(project, "quarantined", "the vectors' quarantine")
    for key, text in SPEC["fixture"].get("planted", {}).items():
        store.put(key, text.encode())  # copied in beside the index, never indexed
    install_tokens(store)
    views = Views(store)  # no vector asks a view's upstream
    for name, policy in SPEC["fixture"]["views"].items():
        views.save(parse_policy(name, policy), new=True)
    apps = {
        mode: create_app(store, Settings(private=mode == "private"), views=views) for mode in MODES
    }
    apps["status"] = create_app(StatusUnreadable(root), Settings())
    return store, apps


def _expand(value: str, store: LocalStore) -> str:
    def etag(match: re.Match[str]) -> str:
        info = store.head(match.group(1))
        assert info is not None
        return info.etag

    return re.sub(r"\{etag:([^}]+)\}", etag, expand_credentials(value))


@pytest.mark.parametrize("vector", SPEC["vectors"], ids=[v["name"] for v in SPEC["vectors"]])
def test_vector(vector: dict[str, Any], indexed: tuple[LocalStore, dict[str, Any]]) -> None:
    """The request reaches the app byte for byte as written (raw path, raw header bytes), as
    from a server; the answer is the one the vector expects, with a body where it has one."""
    store, apps = indexed
    request, expect = vector["request"], vector["expect"]
    headers = tuple(
        (k, _expand(v, store).encode("utf-8"))
        for k, given in request["headers"].items()
        for v in (given if isinstance(given, list) else [given])  # a list: the header repeated
    )
    response = call(
        apps["status" if expect.get("fault") == "status" else vector.get("mode", "public")],
        Request(request["method"], request["path"], request["query"], headers),
    )
    assert response.status == expect["status"], response.text
    for name, value in expect.get("headers", {}).items():
        if value is None:  # must be absent
            assert name not in response.headers, name
            continue
        value = _expand(value, store)
        if name == "content-range":
            assert response.headers[name].startswith(value.split("/")[0])
        else:
            assert response.headers.get(name) == value, name
    if expect.get("origin") == "api":
        return  # the API's answer: no stored object to compare
    if "uri" in expect:  # what CloudFront caches the read under, so what invalidates it
        answer = decide(request["method"], request["path"], request["query"])
        assert answer.key is not None
        assert origin_uri(answer.key) == expect["uri"]
    if expect.get("object"):
        _, body = store.get(expect["object"])
        if expect["object"].endswith(".gz"):  # the variant's bytes; compare the page itself
            body, response.body = gzip.decompress(body), gzip.decompress(response.body)
        if "range" in expect:
            start, end = expect["range"]
            body = body[start:] if end is None else body[start : end + 1]
        assert response.body == body
    if request["method"] == "HEAD":
        assert response.body == b""
        assert int(response.headers["content-length"]) > 0
