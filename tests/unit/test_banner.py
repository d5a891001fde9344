"""What ``skypi serve`` prints at start, public and private."""

from __future__ import annotations

from skypi.api.settings import Settings
from skypi.local.serve import BANNER_NAME, _welcome, banner_token
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository


def test_a_private_banner_off_a_terminal_shows_no_token(store: LocalStore) -> None:
    text = _welcome(store, Settings(private=True), "127.0.0.1", 8080)
    assert "token create" in text
    assert "skypi_" not in text
    assert "http://__token__:$TOKEN@127.0.0.1:8080/simple/" in text  # the scheme it serves


def test_each_start_replaces_the_banner_token(store: LocalStore) -> None:
    first, second = banner_token(store), banner_token(store)
    assert first != second
    assert second.startswith("skypi_")
    names = [r.name for r in TokenRepository(store).all()]
    assert names == [BANNER_NAME]  # the first one was revoked
    text = _welcome(store, Settings(private=True), "127.0.0.1", 9000, second)
    assert f"export TOKEN={second}" in text


def test_a_public_banner_is_short(store: LocalStore) -> None:
    text = _welcome(store, Settings(), "127.0.0.1", 8080)
    assert "pip install --index-url http://127.0.0.1:8080/simple/ PACKAGE" in text
    assert "TOKEN=" not in text
