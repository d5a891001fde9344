"""The views' CloudFront Function (``/view/*``) and its Python twin give one answer, over
generated requests: the views' names, dates and inner paths (pages, cached files, private
files, hostile spellings), both read modes and every kind of token. The twin is what ``skypi
serve`` runs (``skypi.core.viewedge.decide_view``, the read token check of its routes) and the
key the function must send (``view_origin_key``). Like tests/infra/test_edges_agree.py, the
examples are derandomized; ``SKYPI_EDGE_EXAMPLES`` asks for more.

And the function never picks an origin: ``cf.selectRequestOriginById`` would send the request
past the behaviour's origin group, so a miss would never fail over to the view Lambda
(standards: "the function's selectRequestOriginById must not bypass the origin group")."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pytest
from hypothesis import strategies as st

from infra.cdn import MAX_FUNCTION_BYTES, view_edge_source
from skypi.api.auth import Authenticator
from skypi.api.errors import status_of
from skypi.core.edge import authorization_count
from skypi.core.errors import AuthFailure
from skypi.core.keys import VIEW_MADE_PREFIX, quarantined_project, recognise
from skypi.core.tokens import Scope
from skypi.core.viewedge import decide_view, view_origin_key
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository
from tests.infra.test_edge_function import (
    SPEC,
    VIEWS,
    Outcome,
    _event,
    generate,
    mirrored_records,
    outcome,
    run_by_mode,
)
from tests.infra.test_edges_agree import (
    ACCEPTS,
    ENCODINGS,
    FILES,
    FOLDERS,
    NAMES,
    QUERIES,
    SEGMENTS,
    authorization,
)
from tests.test_edge_vectors import install_tokens

EXAMPLES = int(os.environ.get("SKYPI_EDGE_EXAMPLES", "600"))
MODES = ("public", "private")
# What a view's segment may be: a view, a pinned view, and what is neither.
VIEWS_SEGMENTS = [
    *["safe"] * 8, *["safe@2026-11-01"] * 6, "safe@2026-02-30", "safe@0000-01-01", "safe@",
    "safe@2026-1-1", "safe@x", "Safe", "-safe", "a" * 64, "a" * 65, "safe%2F", "sa%66e", "",
    "safe@2026-11-01@1", "caf\u00e9", "%C3%A9",
]  # fmt: skip
INNERS = ["", "simple", "simple/", "files/", "packages/", "project/", "legacy/", "api/x", "/"]
INNERS += ["simple/%zz/", "simple/foo%00/", "files/foo-bar/%ff.whl", "packages/%C0%AF/x.whl"]


@st.composite
def view_path(draw: st.DrawFn) -> str:
    base = "/view/" + draw(st.sampled_from(VIEWS_SEGMENTS))
    endings = st.sampled_from(["/", "/", "/", "", "//", "/extra/", "%2F"])
    files = st.tuples(st.sampled_from(FOLDERS), st.sampled_from(FILES)).map("".join)
    inner = draw(
        st.one_of(
            st.sampled_from(INNERS),
            st.tuples(st.sampled_from(NAMES), endings).map(lambda p: f"simple/{p[0]}{p[1]}"),
            st.tuples(st.sampled_from(NAMES), endings).map(lambda p: f"simple/{p[0]}{p[1]}"),
            files.map(lambda f: f"files/{f}"),
            files.map(lambda f: f"packages/{f}"),
            st.lists(st.sampled_from(SEGMENTS), max_size=3).map("/".join),
        )
    )
    return base if draw(st.integers(0, 9)) == 0 else f"{base}/{inner}"


@dataclass(frozen=True)
class Generated:
    mode: str
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]


@st.composite
def generated(draw: st.DrawFn) -> Generated:
    headers: list[tuple[str, str]] = []
    accept = draw(st.sampled_from(ACCEPTS))
    if accept is not None:
        headers.append(("accept", accept))
    encoding = draw(st.sampled_from(ENCODINGS))
    if encoding is not None:
        headers.append(("accept-encoding", encoding))
    if draw(st.integers(0, 3)):
        credentials = draw(authorization())
        if credentials is not None:
            headers.append(("authorization", credentials))
    return Generated(
        mode=draw(st.sampled_from(MODES)),
        # the behaviour allows these only (an origin group's): CloudFront refuses the others
        method=draw(st.sampled_from(["GET"] * 6 + ["HEAD", "OPTIONS"])),
        path=draw(view_path()),
        query=draw(st.sampled_from(QUERIES)),
        headers=tuple(headers),
    )


@pytest.fixture(scope="module")
def requests() -> list[Generated]:
    batch = generate(generated(), EXAMPLES)
    assert len(batch) >= EXAMPLES * 0.9
    return batch


@pytest.fixture(scope="module")
def function_side(requests: list[Generated]) -> list[Outcome]:
    events = [_event(r.method, r.path, r.query, dict(r.headers)) for r in requests]
    results = run_by_mode([r.mode for r in requests], events, mirrored_records())
    return [outcome(e, r) for e, r in zip(events, results, strict=True)]


@pytest.fixture(scope="module")
def authenticator(tmp_path_factory: pytest.TempPathFactory) -> Authenticator:
    store = LocalStore(tmp_path_factory.mktemp("view-edge") / "packages")
    install_tokens(store)
    return Authenticator(TokenRepository(store))


QUARANTINED = {p for p in map(quarantined_project, mirrored_records()) if p}


def python_outcome(request: Generated, auth: Authenticator) -> Outcome:
    """What ``skypi serve``'s view routes decide before they read anything, and the key the
    edge must send a read to."""
    headers = dict(request.headers)
    if authorization_count([headers["authorization"]] if "authorization" in headers else []) > 1:
        return Outcome(status=400)
    found = decide_view(
        request.method, request.path, request.query, headers.get("accept"),
        headers.get("accept-encoding"),
    )  # fmt: skip
    answer = found.answer
    if answer.status in {400, 405}:
        return Outcome(status=answer.status)
    if request.mode == "private" and answer.authenticate:
        try:
            auth.require(headers.get("authorization"), Scope.READ, answer.project, tokens_only=True)
        except AuthFailure as failure:
            status = status_of(failure)
            return Outcome(status=status, challenge=status == 401)
    if answer.location is not None:
        return Outcome(status=answer.status, location=answer.location)
    key = view_origin_key(found)
    if key is None:
        return Outcome(status=answer.status if answer.status != 200 else 404)
    if found.kind in {"file", "private-file"} and found.project in QUARANTINED:
        return Outcome(status=404)  # PEP 792, before the cache (a published name's files)
    return Outcome(origin=VIEWS, key=key)


def test_the_views_function_and_its_twin_give_one_answer(
    requests: list[Generated], function_side: list[Outcome], authenticator: Authenticator
) -> None:
    found = [
        (request, mine, theirs)
        for request, theirs in zip(requests, function_side, strict=True)
        if (mine := python_outcome(request, authenticator)) != theirs
    ]
    shown = "\n".join(f"{r}\n  python:   {p}\n  function: {f}" for r, p, f in found[:10])
    assert not found, f"{len(found)} of {len(requests)} requests disagree:\n{shown}"


def test_the_generated_requests_reach_every_outcome(function_side: list[Outcome]) -> None:
    statuses = {o.status for o in function_side}
    assert {301, 400, 401, 403, 404, 405} <= statuses
    sent = [o.key for o in function_side if o.origin == VIEWS and o.key]
    families = {f.family.name for k in sent if (f := recognise(k))}
    assert {"view page", "view cached file", "distribution"} <= families
    assert any(k.startswith(f"{VIEW_MADE_PREFIX}safe@") for k in sent)  # a pinned page
    assert any(k.startswith(f"{VIEW_MADE_PREFIX}safe/") for k in sent)  # a root listing


VIEW = r"[a-z0-9]+(-[a-z0-9]+)*"


def test_only_view_objects_and_private_files_are_ever_asked_of_the_origin(
    function_side: list[Outcome],
) -> None:
    """Never a policy, an upstream page, the OSV data or another family; what a view makes
    for each request goes where no object is stored (no family recognises it)."""
    for o in function_side:
        if o.origin != VIEWS:
            continue
        assert o.key is not None
        found = recognise(o.key)
        if found is None:
            made = rf"view/{VIEW}(@2026-11-01)?/simple/.+"
            assert re.fullmatch(made, o.key), o.key
        else:
            # a private file, or its PEP 658 metadata, is the bucket's to answer
            allowed = {"view page", "view cached file", "distribution", "metadata"}
            assert found.family.name in allowed, o.key
            assert re.match(rf"(views/{VIEW}/(simple|files)/|packages/)", o.key), o.key


def test_the_views_function_never_picks_an_origin() -> None:
    """cf.selectRequestOriginById would skip the behaviour's origin group, and with it the
    failover to the view Lambda; the function fits the 10 KB quota in both modes."""
    for mode in MODES:
        source = view_edge_source(mode, "kvs-under-test")
        assert "selectRequestOriginById" not in source
        assert "updateRequestOrigin" not in source
        assert len(source.encode()) + 64 <= MAX_FUNCTION_BYTES
        assert "async function handler(" in source
        assert not re.search(r"__[A-Z_]+__", source)
        imports = re.findall(r"^import .*$", source, re.MULTILINE)
        assert imports == ["import cf from 'cloudfront';", "import crypto from 'crypto';"]
        for forbidden in ("=>", "eval(", "new Function", "require(", "fetch("):
            assert forbidden not in source, forbidden
        assert source.isascii()


def test_the_fixture_names_the_views_the_vectors_use() -> None:
    used = {v["request"]["path"].split("/")[2].split("@")[0] for v in SPEC["vectors"]
            if v["request"]["path"].startswith("/view/")}  # fmt: skip
    assert used <= {"safe", "Safe", "Bad", "safe%2Fsimple"}
    assert "safe" in SPEC["fixture"]["views"]
