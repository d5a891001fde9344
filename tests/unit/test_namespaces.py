"""Namespaces (PEP 752) in the pure core: which names a namespace covers, the overlap rule, and
who may publish what, as tables; the cases of the standard's vectors are marked ``§12.1``."""

from __future__ import annotations

import json

import pytest

from skypi.core.errors import Conflict, DoesNotExist, InvalidRequest, Reserved
from skypi.core.namespaces import (
    Namespace,
    Namespaces,
    check_principal,
    covers,
    namespace_name,
    overlaps,
)
from skypi.core.tokens import TokenRecord, new_token

PLATFORM = "token:0123456789ab"
DATA = "token:ba9876543210"
ACME = Namespace.create("acme", owner="platform", grants={PLATFORM}, predating={"acme-legacy"})
CLOUD = Namespace.create("acme-cloud", owner="platform")
INDEX = Namespaces((ACME, CLOUD))


@pytest.mark.parametrize(
    ("project", "covered"),
    [
        ("acme", True),  # §12.1 vector 1
        ("acme-tools", True),
        ("acme-cloud-x", True),
        ("acmetools", False),
        ("acme2", False),
        ("my-acme", False),
    ],
)
def test_a_namespace_covers_itself_and_its_hyphenated_names(project: str, covered: bool) -> None:
    assert covers("acme", project) is covered


@pytest.mark.parametrize(
    ("proposed", "existing", "overlap"),
    [
        ("acme", "acme-cloud", True),  # §12.1 vector 2
        ("acme-cloud", "acme", True),
        ("acmecorp", "acme", False),
        ("acme", "acme", True),
        ("ac", "acme", False),
    ],
)
def test_the_overlap_rule(proposed: str, existing: str, overlap: bool) -> None:
    assert overlaps(proposed, existing) is overlap


@pytest.mark.parametrize(
    ("text", "normalized"),
    [("acme", "acme"), ("Acme.Cloud", "acme-cloud"), ("acme__cloud-eu", "acme-cloud-eu")],
)
def test_namespace_names_are_normalized(text: str, normalized: str) -> None:
    assert namespace_name(text) == normalized


@pytest.mark.parametrize("text", ["", "-acme", "acme-", "ac me", "a/b", "é", "a-b-c-d", "x" * 101])
def test_a_namespace_that_is_no_project_name_or_too_deep_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        namespace_name(text)


@pytest.mark.parametrize(
    "text", ["token:0123456789ab", "user:alice", "publisher:a1b2c3", "user:a.b@c"]
)
def test_principals(text: str) -> None:
    assert check_principal(text) == text


@pytest.mark.parametrize(
    "text", ["0123456789ab", "token:xyz", "user:", "user:a b", "group:x", "publisher:\u00e9"]
)
def test_what_is_no_principal(text: str) -> None:
    with pytest.raises(InvalidRequest):
        check_principal(text)


@pytest.mark.parametrize(
    ("project", "principal", "listed", "allowed"),
    [
        ("acme_newthing", DATA, False, False),  # §12.1 vector 12: 409
        ("acme-legacy", DATA, True, True),  # vector 13: it predates the namespace
        ("acmenew", DATA, False, True),  # vector 14: no namespace
        ("acme_newthing", PLATFORM, False, True),  # the grant
        ("acme-cloud-storage", PLATFORM, False, True),  # a grant on the outer one suffices
        ("Acme.Tools", None, False, False),  # a drop-in cannot start a project there
        ("acme-tools", None, True, True),  # ... and adds to one that is listed
        ("acme-tools", DATA, True, False),  # listed, but not by the grant's holder
        ("acme-tools", "", False, False),  # uploads without a token (an open local index)
        ("requests", None, False, True),
    ],
)
def test_who_may_publish(project: str, principal: str | None, listed: bool, allowed: bool) -> None:
    assert (INDEX.refusal(project, principal, listed=listed) is None) is allowed


def test_the_refusal_names_the_namespace_its_owner_and_the_grant_to_ask_for() -> None:
    with pytest.raises(Reserved) as refused:
        INDEX.check("acme-cloud-x", DATA)
    message = str(refused.value)
    assert "'acme-cloud-x' is in the namespace 'acme-cloud', reserved for platform" in message
    assert f"skypi namespace grant acme-cloud {DATA}" in message


def test_an_open_namespace_lets_every_uploader_in_but_is_still_listed() -> None:
    index = Namespaces((Namespace.create("shared", owner="everyone", open=True),))
    assert index.refusal("shared-x", DATA) is None
    assert index.entries("shared-x") == (("shared", True, "everyone"),)


@pytest.mark.parametrize(
    ("project", "entries"),
    [
        ("acme-tools", (("acme", True),)),  # §12.1 vector 3
        ("acme-legacy", (("acme", False),)),  # vector 4
        ("acme-cloud-storage", (("acme", True), ("acme-cloud", True))),  # vector 5
        ("requests", None),  # vector 6
    ],
)
def test_a_project_pages_namespaces(project: str, entries: object) -> None:
    found = INDEX.entries(project)
    assert (None if found is None else tuple((e.name, e.owned) for e in found)) == entries
    assert all(e.owner == "platform" for e in found or ())  # the pages for people show it


def test_the_namespace_documents() -> None:
    assert json.loads(INDEX.listing()) == [{"name": "acme"}, {"name": "acme-cloud"}]  # vector 8
    assert json.loads(INDEX.detail("acme")) == {  # vector 9
        "name": "acme",
        "parent": None,
        "children": ["acme-cloud"],
        "owner": "platform",
    }
    assert json.loads(INDEX.detail("acme-cloud"))["parent"] == "acme"  # vector 10
    with pytest.raises(DoesNotExist):
        INDEX.detail("nope")  # vector 11


def test_children_are_direct_children_only() -> None:
    index = INDEX.add(Namespace.create("acme-cloud-eu", owner="platform"))
    assert json.loads(index.detail("acme"))["children"] == ["acme-cloud"]
    assert json.loads(index.detail("acme-cloud"))["children"] == ["acme-cloud-eu"]


def test_overlapping_namespaces_need_the_same_owner() -> None:
    with pytest.raises(Conflict, match="overlaps 'acme', reserved for platform"):
        INDEX.add(Namespace.create("acme-data", owner="data"))
    with pytest.raises(Conflict, match="exists already"):
        INDEX.add(Namespace.create("Acme", owner="platform"))
    assert "acmecorp" in INDEX.add(Namespace.create("acmecorp", owner="data")).by_name


def test_grants_are_added_and_revoked() -> None:
    index = INDEX.grant("acme-cloud", DATA)
    assert index.refusal("acme-cloud-x", DATA) is None
    assert index.revoke("acme-cloud", DATA).refusal("acme-cloud-x", DATA) is not None
    with pytest.raises(DoesNotExist):
        INDEX.revoke("acme-cloud", DATA)
    with pytest.raises(DoesNotExist):
        INDEX.grant("nope", DATA)


def test_predating_projects_are_only_those_it_covers() -> None:
    ns = Namespace.create("acme", owner="p", predating={"Acme.Old", "requests"})
    assert ns.predating == {"acme-old"}


@pytest.mark.parametrize("owner", ["", "  ", "a\nb", "x" * 101])
def test_an_owner_is_a_printable_label(owner: str) -> None:
    with pytest.raises(InvalidRequest):
        Namespace.create("acme", owner=owner)


def test_records_round_trip_and_damaged_ones_are_refused() -> None:
    assert Namespaces.from_json_bytes(INDEX.to_json_bytes()) == INDEX
    for raw in (b"", b"[]", b'{"namespaces": [{"name": "-x", "owner": "a"}]}', b"{}"):
        with pytest.raises(ValueError, match="not namespace records"):
            Namespaces.from_json_bytes(raw)


# -- tokens limited to namespaces -------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "project", "allowed"),
    [
        ("upload", "acme", True),
        ("upload", "Acme_Tools", True),
        ("upload", "acme-cloud-x", True),
        ("upload", "acmetools", False),
        ("upload", "billing", True),  # one of its projects
        ("upload", "other", False),
        ("upload", None, False),  # the whole index: only unlimited tokens
        ("read", None, True),  # the root listing
        ("read", "my-acme", False),
    ],
)
def test_a_token_limited_to_a_namespace(scope: str, project: str | None, allowed: bool) -> None:
    record = TokenRecord.create(
        new_token(), name="ci", scopes={"upload"}, projects={"billing"}, namespaces={"Acme"}
    )
    assert record.namespaces == {"acme"}
    assert record.allows(scope, project) is allowed


def test_a_namespace_limited_token_round_trips_and_reaches_the_edge_as_a_limit() -> None:
    record = TokenRecord.create(
        new_token(), name="ci", scopes={"read"}, projects=None, namespaces={"acme"}
    )
    assert TokenRecord.from_json(record.to_json()) == record
    assert json.loads(record.edge_value()) == {"s": 0, "p": [], "e": None, "n": ["acme"]}
    plain = TokenRecord.create(new_token(), name="ci", scopes={"read"}, projects=None)
    assert "namespaces" not in plain.to_json()  # records of older tokens stay as they were
    assert json.loads(plain.edge_value()) == {"s": 0, "p": None, "e": None}
    with pytest.raises(InvalidRequest):
        TokenRecord.create(
            new_token(), name="ci", scopes={"read"}, projects=None, namespaces={"-x"}
        )
