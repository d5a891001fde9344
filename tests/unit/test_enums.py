"""Token scopes and project statuses are enums whose values are their stored and wire spellings:
a token record, its edge record and a page read and write the very bytes they did as strings."""

from __future__ import annotations

import json

import pytest

from skypi.core.errors import CorruptDocument
from skypi.core.pages import PROJECT_STATUSES, ProjectPage, ProjectStatus, check_status
from skypi.core.tokens import SCOPES, Scope, TokenRecord

STORED_TOKEN = {
    "id": "0123456789ab",
    "hash": "ab" * 32,
    "name": "ci",
    "scopes": ["read", "upload"],
    "projects": ["billing"],
    "created": "2026-01-02T03:04:05+00:00",
    "expires": None,
}


def test_a_token_record_reads_its_scopes_as_scopes_and_writes_the_same_bytes() -> None:
    record = TokenRecord.from_json(STORED_TOKEN)
    assert record.scopes == {Scope.READ, Scope.UPLOAD}
    assert {type(s) for s in record.scopes} == {Scope}
    assert json.dumps(record.to_json()) == json.dumps(STORED_TOKEN)
    assert record.edge_value() == '{"s":1,"p":["billing"],"e":null}'  # the edge's rank
    assert record.allows(Scope.UPLOAD, "billing")
    assert not record.allows(Scope.UPLOAD, "other")
    assert record.allows(Scope.READ, None)
    assert not record.may(Scope.ADMIN)
    assert [str(s) for s in SCOPES] == ["read", "upload", "admin"]  # the rank order


def test_a_stored_scope_that_is_none_is_refused_when_read() -> None:
    with pytest.raises(ValueError, match="'root' is not a valid Scope"):
        TokenRecord.from_json({**STORED_TOKEN, "scopes": ["root"]})


def test_a_page_reads_its_status_as_a_status_and_writes_the_same_bytes() -> None:
    page = ProjectPage.empty("Demo").with_status(ProjectStatus.ARCHIVED, "moved")
    raw = page.to_json_bytes()
    assert b'"project-status":{"status":"archived","reason":"moved"}' in raw
    again = ProjectPage.from_json_bytes(raw)
    assert again.status is ProjectStatus.ARCHIVED
    assert again.to_json_bytes() == raw
    assert PROJECT_STATUSES == ("active", "archived", "deprecated", "quarantined")
    assert check_status("quarantined", " held ") == (ProjectStatus.QUARANTINED, "held")


def test_a_stored_page_whose_status_is_none_cannot_be_read() -> None:
    raw = ProjectPage.empty("Demo").to_json_bytes().replace(b'"active"', b'"retired"')
    with pytest.raises(CorruptDocument, match="'retired' is not a valid ProjectStatus"):
        ProjectPage.from_json_bytes(raw)
