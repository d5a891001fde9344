"""The view function's reading of an origin URI is the inverse of the view edge function's
(its Python twin, ``view_origin_key``): each viewer request the edge sends to the origin
group comes back as a request the view routes decide to the same object."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skypi.core.edge import origin_uri
from skypi.core.viewedge import decide_view, from_origin_uri, view_origin_key

ACCEPTS = (
    None,
    "application/vnd.pypi.simple.v1+json",
    "application/vnd.pypi.simple.v1+html",
    "text/html",
)


@pytest.mark.parametrize(
    "path",
    [
        "/view/safe/simple/",
        "/view/safe/simple/foo-bar/",
        "/view/safe@2026-11-01/simple/foo-bar/",
        "/view/safe/files/foo-bar/foo_bar-1.0+cpu-py3-none-any.whl",
        "/view/safe/files/foo-bar/foo_bar-1.0.tar.gz.metadata",
    ],
)
@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_what_the_edge_sends_comes_back_as_the_same_request(
    path: str, accept: str | None, encoding: str | None
) -> None:
    asked = decide_view("GET", path, "", accept, encoding)
    key = view_origin_key(asked)
    assert key is not None
    back = from_origin_uri(origin_uri(key))
    assert back is not None, key
    again = decide_view("GET", back.path, "", back.accept, back.accept_encoding)
    assert view_origin_key(again) == key
    assert (again.kind, again.project, again.filename, again.pin) == (
        asked.kind,
        asked.project,
        asked.filename,
        asked.pin,
    )


@given(st.text(max_size=80))
def test_any_uri_is_refused_or_names_a_view_request(raw: str) -> None:
    back = from_origin_uri("/" + raw)
    if back is not None:
        assert back.path.startswith("/view/")
        assert decide_view("GET", back.path, "", back.accept, back.accept_encoding).kind != "none"
