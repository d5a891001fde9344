"""What the index lists must round-trip through its own read rules: for every key the indexer
accepts, the page's link to it, resolved as a client resolves a relative href, is read back by
:mod:`skypi.core.edge` as that very key. Keys that would not (a dot segment, a dot-file, a
literal ``%``) are refused by the indexer with a message, never listed with a dead link."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skypi.core.edge import decide
from skypi.core.errors import InvalidDistribution
from skypi.core.pages import file_href
from skypi.indexer.changes import project_of_key

# Segments built from the characters that change how a path is read: dots, percent signs and
# what follows them, slashes' encodings, spaces, plus signs, non-ASCII.
SEGMENT = st.text(alphabet=list(".%2Ffe5a +-_~é"), min_size=1, max_size=6)
FILENAMES = st.sampled_from(
    ["demo-1.0.tar.gz", "demo-1.0+cpu-py3-none-any.whl", "Demo_X-2.0-py3-none-any.whl"]
)


def _read_back(key: str) -> str | None:
    project = project_of_key(key).project
    url = urljoin(f"https://index.example/simple/{project}/", file_href(key))
    answer = decide("GET", urlsplit(url).path, "")
    return answer.key if answer.status == 200 else None


@settings(max_examples=400, derandomize=True, deadline=None)
@given(folders=st.lists(SEGMENT, min_size=1, max_size=3), filename=FILENAMES)
def test_every_key_the_indexer_accepts_is_served_at_its_link(
    folders: list[str], filename: str
) -> None:
    key = "packages/" + "/".join([*folders, filename])
    try:
        project_of_key(key)
    except (InvalidDistribution, ValueError):
        return  # refused: never listed
    assert _read_back(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "packages/../packages/./demo-1.0.tar.gz",
        "packages/x%2Fy/demo-1.0.tar.gz",
        "packages/100%/demo-1.0.tar.gz",
        "packages/.hidden/demo-1.0.tar.gz",
    ],
)
def test_a_key_its_link_would_not_reach_is_refused_with_a_reason(key: str) -> None:
    with pytest.raises(InvalidDistribution, match="cannot be linked to"):
        project_of_key(key)


def test_the_indexer_skips_such_a_key_with_a_log_line_on_s3(
    moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """On S3 any key can be stored (``aws s3 cp`` to ``packages/x%2Fy/``): it is skipped, said
    once in the log, and no page links to it."""
    from skypi.indexer.service import Indexer, Landed
    from tests.dists import sdist_bytes
    from tests.emulated import s3_store

    store = s3_store(moto_endpoint)
    key = "packages/x%2Fy/demo-1.0.tar.gz"
    store.put(key, sdist_bytes("demo", "1.0"))
    with caplog.at_level("INFO", logger="skypi.indexer"):
        outcome = Indexer(store).apply([Landed(key)])
    assert [k for k, _ in outcome.skipped] == [key]
    assert "cannot be linked to" in caplog.text
    assert store.head("simple/demo/index.json") is None
