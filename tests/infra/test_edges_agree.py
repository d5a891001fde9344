"""The two edges give one answer (design invariant 6), over generated requests, not only over
the listed vectors: methods in any case, percent-encodings single, double and malformed, dot
segments, non-ASCII, odd Accept and Authorization headers, ``?format=``, both read modes and
every kind of token. For each request the Python read path (the app ``skypi serve`` runs) and
the CloudFront Function (the minified code that deploys, under node, all requests in one run)
must agree on the status, the redirect's location, the object key and the auth outcome, and
nothing outside ``simple/``, ``packages/`` and the pages for people (``site/``) may ever reach
the bucket.

The examples are derandomized (the same every run, in CI too); ``SKYPI_EDGE_EXAMPLES`` asks
for more of them. A quarter of them are aimed at the project scope (a well-formed credential of
a project-limited token on a private index, against its own project, another one and none),
which random requests reach too rarely: at the default 600 examples (about 25 s here) the test
then catches a scope rule broken for the pages for people, which it missed before at 600.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from skypi.api.app import create_app
from skypi.api.settings import Settings
from skypi.core.keys import NAMESPACE_RECORDS_KEY, ROOT_JSON_KEY
from skypi.indexer.admin import Admin
from skypi.indexer.service import Indexer, Landed
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
from tests.asgi import Request, call_all
from tests.dists import wheel_bytes, wheel_name
from tests.infra.test_edge_function import (
    BUCKET_KEY_PREFIXES,
    SPEC,
    Outcome,
    _event,
    generate,
    mirrored_records,
    outcome,
    run_by_mode,
)
from tests.test_edge_vectors import install_tokens, vector_token

EXAMPLES = int(os.environ.get("SKYPI_EDGE_EXAMPLES", "600"))
MODES = ("public", "private")
WHEEL = "foo_bar-1.0-py3-none-any.whl"
SEGMENTS = [
    "foo-bar", "Foo_Bar", "FOO.bar", "foo", "other-project", "-bad-", "x", "", WHEEL,
    f"{WHEEL}.metadata", "foo_bar-1.0.tar.gz", "secret-1.0-py3-none-any.whl",
    "foo_bar-1%2Fsecret-1.0-py3-none-any.whl", "index.json", "index.html", ".", "..", ".skypi",
    "%2e", "%2E%2e", "%2e%2e", "%252e%252e", "%2F", "%2f", "%252F", "%25", "%zz", "%2", "%",
    "%00", "%0a", "%7f", "%C2%85", "%C5%BFix", "%E2%84%AAelvin", "%ff", "%C0%AF", "%ED%A0%80",
    "caf%C3%A9", "caf\u00e9", "%73imple", "a%20b", "a b", "a+b", "\\", "%5C", "~", "%7E",
]  # fmt: skip
PREFIXES = [
    "/simple", "/simple/", "/packages/", "/", "", "/health", "/healthz", "/health/", "/legacy",
    "/legacy/", "/legacyx", "/api/", "/api", "/%73imple/", "/pack%61ges/", "/Simple/",
    "//simple/", "/_/oidc/", "/project/", "/x/", "/simple%2F", "/packages%2F",
]  # fmt: skip
QUERIES = [
    "", "format=application/vnd.pypi.simple.v1+json",
    "format=application%2Fvnd.pypi.simple.v1%2Bjson", "format=text/html",
    "format=%09text/html", "format=%1Ftext/html", "format=%20application/vnd.pypi.simple.v1+json",
    "format=application/vnd.pypi.simple.v1 json", "format=%zz", "format=", "format",
    "x=1&format=text/html", "format=text/html&format=application/vnd.pypi.simple.v1+json",
    "a&&b=2", "format=APPLICATION/VND.PYPI.SIMPLE.V1%2BJSON",
    "format=application/vnd.pypi.simple.latest%2Bjson", "format=%C5%BF", "FORMAT=text/html",
    "format=application%2Fvnd.pypi.simple.v1%2Bhtml%00",
]  # fmt: skip
ACCEPTS = [
    None, "", "*/*", "text/html", "application/vnd.pypi.simple.v1+json",
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01", "application/vnd.pypi.simple.v1+json;q=0", "a/b/c;;q=x",
    "\x1fapplication/vnd.pypi.simple.v1+json", "\tapplication/vnd.pypi.simple.v1+json\t",
    "\xa0application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+json;q=1e0",
    "application/vnd.pypi.simple.v1+json;q=.5, text/html;q=0.4", "application/*;q=nan",
    "application/vnd.pypi.simple.v1+json;q=1_0", "APPLICATION/VND.PYPI.SIMPLE.LATEST+JSON",
    "application/vnd.pypi.simple.v1+json;Q=0.9, text/html;q=0.95", "text/html;q=-0",
]  # fmt: skip
ENCODINGS = [
    None, "gzip", "gzip, deflate, br", "br", "gzip;q=0", "*", "*;q=0", "gzip;q=0, *", "\x1fgzip",
    "\tgzip\t", "\xa0gzip", "GZIP", "x-gzip", "gzip;q=1_0", "gzip;q=nan", "gzip ; q=0.5",
    "identity", "", "br;q=1, gzip;q=0.001", "gzip;q=0.5e1",
]  # fmt: skip
# Repeats weigh the draw towards requests that get past the first checks.
METHODS = [
    *["GET"] * 16,
    "HEAD",
    "HEAD",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "get",
    "Get",
    "head",
]
NAMES = [
    "foo-bar", "Foo_Bar", "FOO.bar", "foo", "other-project", "%C5%BFix", "foo%2Fbar", "a",
    "held-back", "Held.Back",
]  # fmt: skip
NAMES += ["namespaces", "Namespaces", "namespace", "namespace/acme", "namespace/Acme.Cloud"]
FOLDERS = [
    "foo-bar/", "foo-bar%2F", "foo-bar%2f", "", "other-project/", "foo-bar/sub/", "./",
    "held-back/",
]  # fmt: skip
FILES = [
    WHEEL, f"{WHEEL}.metadata", "foo_bar-1.0.tar.gz", "secret-1.0-py3-none-any.whl",
    "foo_bar-1%2Fsecret-1.0-py3-none-any.whl", "Foo.Bar-1.0.zip", "other_project-2.0.tar.gz",
    "%C5%BFix-1.0.tar.gz", "nope-1.0.tar.gz", ".metadata", "foo_bar-1.0-py3-none-any.whl%00",
    "foo_bar-1.0+cpu-py3-none-any.whl", "foo_bar-1.0%2Bcpu-py3-none-any.whl",
    "foo_bar-1.0%2bcpu-py3-none-any.whl.metadata", "foo_bar-1.0~a*b!c'(d)-py3-none-any.whl",
    "held_back-1.0-py3-none-any.whl", "held_back-1.0-py3-none-any.whl.metadata",
    "Held.Back-1.0.tar.gz", "held_back_up-1.0.tar.gz",
]  # fmt: skip
TOKENS = [*SPEC["fixture"]["tokens"], "unknown"]
WHITESPACE = ["", " ", "\t", "  ", "\x1f", "\xa0", "\x0b", "\ufeff"[:0]]
SCHEMES = ["Basic", "basic", "BASIC", "bAsIc", "Bearer", "Basic\t", "Basic ", ""]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@st.composite
def authorization(draw: st.DrawFn) -> str | None:
    token = vector_token(draw(st.sampled_from(TOKENS)))
    value = draw(
        st.sampled_from(
            [
                *[_b64(f"__token__:{token}".encode())] * 8,
                _b64(f"{token}:".encode()),  # the token as the username
                _b64(b"__token__:"),  # no password: 401, so pip asks its keyring
                _b64(b"alice:s3cret"),
                _b64(b":"),
                _b64(f"__token__:{token}".encode())[:-1],
                _b64(f"__token__:{token}".encode()).rstrip("="),
                _b64(f"__token__:{token}\xff".encode("latin-1")),  # not UTF-8
                _b64(f"__token__:{token}".encode()) + "=",
                _b64(token.encode()),  # no colon
                "\xe9\xe9\xe9\xe9",
                "!!!!",
                "",
            ]
        )
    )
    scheme = draw(st.sampled_from(["Basic"] * 8 + SCHEMES))
    around = st.sampled_from([""] * 8 + WHITESPACE)
    between = draw(st.sampled_from([" "] * 8 + ["", "  ", "\t"]))
    return draw(around) + scheme + between + value + draw(around)


@st.composite
def segment(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.sampled_from(SEGMENTS))
    text = draw(st.text(alphabet="aZ09-_.%/+~ \u00e9\x00", max_size=6))
    return quote(text, safe=draw(st.sampled_from(["", "/", "%", "/%", "%/.~"])))


@st.composite
def chaotic_path(draw: st.DrawFn) -> str:
    parts = draw(st.lists(segment(), max_size=4))
    separator = draw(st.sampled_from(["/", "%2F", "%2f", "//", "/./", "/%2e%2e/"]))
    ending = draw(st.sampled_from(["", "/", "%2F"]))
    return draw(st.sampled_from(PREFIXES)) + separator.join(parts) + ending


@st.composite
def page_path(draw: st.DrawFn) -> str:
    ending = draw(st.sampled_from(["/", "/", "", "//", "/extra/", "%2F"]))
    return "/simple/" + draw(st.sampled_from(NAMES)) + ending


@st.composite
def file_path(draw: st.DrawFn) -> str:
    return "/packages/" + draw(st.sampled_from(FOLDERS)) + draw(st.sampled_from(FILES))


def path() -> st.SearchStrategy[str]:
    return st.one_of(
        page_path(), file_path(), file_path(), st.sampled_from(["/simple/", "/simple"]),
        chaotic_path(),
    )  # fmt: skip


@dataclass(frozen=True)
class Generated:
    mode: str
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]


# Tokens limited to projects, and the paths that test their limits: each scoped token against
# its own project, another project, a name that only normalizes to one, and none.
SCOPED = [
    name
    for name, spec in SPEC["fixture"]["tokens"].items()
    if spec.get("projects") or spec.get("namespaces")
]
SCOPED_PATHS = [
    "/simple/", "/", "/project/foo-bar/", "/project/other-project/", "/project/Foo_Bar/",
    "/packages/foo-bar/.metadata", "/packages/foo-bar/nope", "/packages/other-project/x",
]  # fmt: skip


@st.composite
def scoped_read(draw: st.DrawFn) -> Generated:
    """A read with a well-formed credential of a project-limited token on a private index:
    where the project-scope rule decides the answer (a random request gets there rarely)."""
    token = vector_token(draw(st.sampled_from(SCOPED)))
    credential = "Basic " + _b64(f"__token__:{token}".encode())
    where = draw(st.one_of(page_path(), file_path(), st.sampled_from(SCOPED_PATHS), chaotic_path()))
    return Generated(
        mode="private",
        method=draw(st.sampled_from(["GET", "GET", "HEAD"])),
        path=where,
        query=draw(st.sampled_from(QUERIES[:4])),
        headers=(("authorization", credential),),
    )


@st.composite
def generated(draw: st.DrawFn) -> Generated:
    if draw(st.integers(0, 3)) == 0:  # a quarter of the requests test the project scope
        return draw(scoped_read())
    headers: list[tuple[str, str]] = []
    header_text = st.text(alphabet=st.characters(max_codepoint=255), max_size=12)  # bytes
    accept = draw(st.one_of(st.sampled_from(ACCEPTS), header_text))
    if accept is not None:
        headers.append(("accept", accept))
    encoding = draw(st.one_of(st.sampled_from(ENCODINGS), header_text))
    if encoding is not None:
        headers.append(("accept-encoding", encoding))
    if draw(st.booleans()):
        credentials = draw(authorization())
        if credentials is not None:
            headers.append(("authorization", credentials))
    query = draw(
        st.one_of(st.sampled_from(QUERIES), st.text(alphabet="af=&%+/ 2F\u00e9", max_size=8))
    )
    method = draw(st.sampled_from(METHODS))
    if method == "POST":  # the function answers an upload without a length itself (411)
        headers.append(("content-length", "0"))
    return Generated(
        mode=draw(st.sampled_from(MODES)),
        method=method,
        path=draw(path()),
        query=query,
        headers=tuple(headers),
    )


class RecordingStore:
    """The store, noting which keys the read path asked for: what CloudFront would have asked
    the bucket for."""

    def __init__(self, store: LocalStore) -> None:
        self._store = store
        self.keys: list[str] = []

    def get(self, key: str) -> Any:
        self.keys.append(key)
        return self._store.get(key)

    def head(self, key: str) -> Any:
        self.keys.append(key)
        return self._store.head(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class PythonEdge:
    apps: dict[str, Any]
    store: RecordingStore
    handed_to_api: list[bool]


@pytest.fixture(scope="module")
def python_edge(tmp_path_factory: pytest.TempPathFactory) -> PythonEdge:
    store = LocalStore(tmp_path_factory.mktemp("edges") / "packages")
    indexer = Indexer(store)
    for wheel in SPEC["fixture"]["wheels"]:
        name = wheel_name(wheel["name"], wheel["version"])
        key = f"packages/{canonicalize_name(wheel['name'])}/{name}"
        store.put(key, wheel_bytes(wheel["name"], wheel["version"]))
        indexer.apply([Landed(key)])
    for project in SPEC["fixture"]["quarantined"]:  # the function finds their records
        Admin(indexer).set_status(project, "quarantined", "the vectors' quarantine")
    install_tokens(store)
    recording = RecordingStore(store)
    handed: list[bool] = []

    async def api(scope: Any, receive: Any, send: Any) -> None:
        handed.append(True)
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    apps = {}
    for mode in MODES:
        settings = Settings(private=mode == "private")
        app = create_app(recording, settings, TokenRepository(store))  # type: ignore[arg-type]
        app.fallback = api
        # Whether a project is quarantined is read from its page, not asked of the bucket.
        app.withheld = create_app(store, settings).withheld
        apps[mode] = app
    return PythonEdge(apps, recording, handed)


def python_outcome(edge: PythonEdge, request: Generated) -> Outcome:
    edge.store.keys.clear()
    edge.handed_to_api.clear()
    encoded = tuple((k, v.encode("latin-1")) for k, v in request.headers)
    [response] = call_all(
        edge.apps[request.mode],
        [Request(request.method, request.path, request.query, encoded)],
    )
    if edge.handed_to_api:
        return Outcome(origin="api")
    keys = edge.store.keys
    if response.status == 404:  # a miss looks for near names in the root listing (the page
        keys = [k for k in keys if k != ROOT_JSON_KEY]  # for people): the API's part on AWS
    if keys:
        assert len(set(keys)) == 1, keys
        return Outcome(origin="bucket", key=keys[0])
    return Outcome(
        status=response.status,
        location=response.headers.get("location"),
        challenge="www-authenticate" in response.headers,
    )


def function_outcomes(requests: list[Generated]) -> list[Outcome]:
    events = [_event(r.method, r.path, r.query, dict(r.headers)) for r in requests]
    results = run_by_mode([r.mode for r in requests], events, mirrored_records())
    return [outcome(e, r) for e, r in zip(events, results, strict=True)]


@pytest.fixture(scope="module")
def requests() -> list[Generated]:
    batch = generate(generated(), EXAMPLES)
    assert len(batch) >= EXAMPLES * 0.9  # the examples really were generated
    return batch


@pytest.fixture(scope="module")
def function_side(requests: list[Generated]) -> list[Outcome]:
    """The function's answers to every generated request: one node process per test run."""
    return function_outcomes(requests)


def test_both_edges_give_one_answer(
    python_edge: PythonEdge, requests: list[Generated], function_side: list[Outcome]
) -> None:
    found = [
        (request, mine, theirs)
        for request, theirs in zip(requests, function_side, strict=True)
        if (mine := python_outcome(python_edge, request)) != theirs
    ]
    shown = "\n".join(f"{r}\n  python:   {p}\n  function: {f}" for r, p, f in found[:10])
    assert not found, f"{len(found)} of {len(requests)} requests disagree:\n{shown}"


def test_nothing_outside_the_index_reaches_the_bucket(function_side: list[Outcome]) -> None:
    reached = [
        o
        for o in function_side
        if o.origin == "bucket"
        and (not (o.key or "").startswith(BUCKET_KEY_PREFIXES) or o.key == NAMESPACE_RECORDS_KEY)
    ]
    assert not reached


def test_the_generated_requests_reach_every_outcome(function_side: list[Outcome]) -> None:
    """The generator is worth something only if it reaches every kind of answer."""
    statuses = {o.status for o in function_side}
    assert {301, 400, 401, 403, 404, 405} <= statuses
    assert {o.origin for o in function_side} >= {"api", "bucket", None}
    keys = {o.key for o in function_side if o.key}
    assert any(k.startswith("packages/") for k in keys)
    assert any(k.startswith("simple/") for k in keys)
