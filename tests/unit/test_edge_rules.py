"""The edge's pure rules, one table each (skypi.core.edge); both edges apply them."""

from __future__ import annotations

import pytest

from skypi.core.edge import decide, decode_path, project_name, read_project, route


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/legacy/", "api"),
        ("GET", "/legacy", "api"),
        ("POST", "/", "api"),  # pypiserver's upload URL
        ("GET", "/", "read"),  # the landing page
        ("post", "/", "read"),  # methods are case-sensitive: not an upload (a 405)
        ("GET", "/health", "api"),
        ("GET", "/healthz", "none"),
        ("GET", "/health/x", "none"),
        ("GET", "/api/projects/x/yank", "api"),
        ("GET", "/simple", "read"),
        ("GET", "/simple/", "read"),
        ("GET", "/simplex", "none"),
        ("GET", "/packages/x", "read"),
        ("GET", "/packages", "none"),
        ("GET", "/%73imple/", "none"),  # routed by the raw path
        ("GET", "/simple%2F", "none"),
        ("GET", "/legacy%2F", "none"),
    ],
)
def test_route(method: str, path: str, expected: str) -> None:
    assert route(method, path) == expected


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/packages/a/b", "/packages/a/b"),
        ("/packages/a%2Fb", "/packages/a/b"),
        ("/packages/a%2fb", "/packages/a/b"),
        ("/packages/%2e%2e", "/packages/.."),  # decoded; the dot rule refuses it later
        ("/packages/caf%C3%A9", "/packages/caf\u00e9"),
        ("/packages/a+b", "/packages/a+b"),  # a plus is a plus in a path
        ("/packages/%zz", None),
        ("/packages/a%2", None),
        ("/packages/a%", None),
        ("/packages/%00", None),
        ("/packages/%0A", None),
        ("/packages/%7F", None),
        ("/packages/%C2%85", None),  # a C1 control
        ("/packages/%ff", None),  # not UTF-8
        ("/packages/%C0%AF", None),  # an overlong slash
        ("/packages/%ED%A0%80", None),  # a surrogate
        ("/packages/%252F", None),  # double encoding
        ("/packages/%5C", None),  # a backslash
        ("/packages/caf\u00e9", None),  # non-ASCII as sent: clients percent-encode it
        ("/packages/a b", None),
    ],
)
def test_decode_path(raw: str, decoded: str | None) -> None:
    assert decode_path(raw) == decoded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Foo.Bar", "foo-bar"),
        ("foo__bar", "foo-bar"),
        ("a", "a"),
        ("\u017fix", None),  # long s: "six" to a case-insensitive Unicode match
        ("\u212aelvin", None),  # the Kelvin sign
        ("foo\n", None),
        ("-foo", None),
        ("foo/bar", None),
        ("", None),
    ],
)
def test_project_name(text: str, expected: str | None) -> None:
    assert project_name(text) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/simple/", None),
        ("/simple", None),
        ("/simple/Foo_Bar/", "foo-bar"),
        ("/simple/foo-bar/extra/", ""),
        ("/packages/foo-bar/foo_bar-1.0-py3-none-any.whl", "foo-bar"),
        ("/packages/foo/foo_bar-1.0-py3-none-any.whl", "foo-bar"),  # the filename decides
        ("/packages/foo-bar/foo_bar-1/secret-1.0-py3-none-any.whl", "secret"),
        ("/packages/foo-bar/foo_bar-1.0.tar.gz.metadata", "foo-bar"),
        ("/packages/foo-bar/\u017fix-1.0.tar.gz", ""),
        ("/packages/foo-bar/README", ""),
    ],
)
def test_read_project_of_a_decoded_path(path: str, expected: str | None) -> None:
    assert read_project(path) == expected


def test_decisions_take_the_project_and_the_key_from_one_decoding() -> None:
    slash = decide("GET", "/packages/foo-bar%2Ffoo_bar-1.0-py3-none-any.whl", "")
    assert (slash.key, slash.project) == (
        "packages/foo-bar/foo_bar-1.0-py3-none-any.whl",
        "foo-bar",
    )
    hidden = decide("GET", "/packages/foo-bar/foo_bar-1%2Fsecret-1.0-py3-none-any.whl", "")
    assert hidden.project == "secret"
    assert decide("GET", "/packages/foo-bar/%2e%2e/x", "").key is None
    assert decide("GET", "/packages/%00", "").status == 400
    assert not decide("GET", "/packages/%00", "").authenticate  # refused before credentials
    assert decide("get", "/simple/", "").status == 405
    moved = decide("GET", "/simple/Foo", "a=1&format=text/html&b=2")
    assert moved.location == "/simple/foo/?format=text/html"
