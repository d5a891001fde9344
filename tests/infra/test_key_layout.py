"""The synthesized roles grant what the key layout (``skypi.core.keys``) says, and only that.

For every family, each role the layout lets read, write or delete it holds that action on a key
of the family in the template (matched as IAM matches resource ARNs: ``*`` spans ``/``); and no
role holds an object action on a pattern the layout does not give it. A family without a grant
for the role that writes it then cannot be added: this test fails first."""

from __future__ import annotations

from fnmatch import fnmatchcase

import pytest

from skypi.core import keys
from skypi.core.keys import FAMILIES, Family
from tests.infra.conftest import Synth
from tests.infra.test_grants_cover_writes import _granted

# The IAM action each kind of access needs (the S3 API reference's "Permissions" of each call).
ACTION = {
    "read": "s3:GetObject",
    "write": "s3:PutObject",
    "delete": "s3:DeleteObject",
    "versions": "s3:GetObjectVersion",
    "multipart": "s3:AbortMultipartUpload",
}
ROLE_FRAGMENT = {
    keys.API: "ApiFunction",
    keys.INDEXER: "IndexerFunction",
    keys.VIEW: "ViewsFunction",
}
_FILE = keys.file_key("foo-bar", "foo_bar-1.0+cpu-py3-none-any.whl")
EXAMPLES: dict[Family, str] = {
    keys.DISTRIBUTION: _FILE,
    keys.METADATA: keys.metadata_key(_FILE),
    keys.PROJECT_PAGE: keys.gzip_key(keys.page_key("foo-bar", "v1html")),
    keys.ROOT_LISTING: keys.page_key(None, "json"),
    keys.LANDING: keys.LANDING_KEY,
    keys.LEGACY_LANDING: keys.LEGACY_SITE_JSON_KEY,
    keys.PROJECT_SITE: keys.project_site_key("foo-bar"),
    keys.RELEASE: keys.release_key("foo-bar", "1.0+cpu"),
    keys.AUTH_RECORD: keys.TOKENS_KEY,
    keys.PROVENANCE: keys.provenance_key("foo-bar", "foo_bar-1.0.tar.gz"),
    keys.HELD_FILES: keys.held_files_key("foo-bar", "ab" * 32),
    keys.LOCAL_STATE: keys.FINGERPRINTS_KEY,
    keys.NAMESPACE_RECORDS: keys.NAMESPACE_RECORDS_KEY,
    keys.NAMESPACE_DOCUMENT: keys.namespace_key("acme-cloud"),
    keys.VIEW_POLICY_RECORD: keys.view_policy_key("safe"),
    keys.VIEW_PAGE: keys.view_key("safe", keys.page_key("foo-bar", "json")),
    keys.VIEW_ROOT: keys.view_key("safe", keys.page_key(None, "json")),
    keys.VIEW_UPSTREAM_PAGE: keys.view_upstream_key("safe", "foo-bar"),
    keys.VIEW_FILE: keys.view_file_key("safe", "foo-bar", "foo_bar-1.0.tar.gz"),
    keys.VIEW_DUE: keys.VIEW_DUE_KEY,
    keys.OSV_DATA: keys.OSV_KEY,
    keys.ROOT_PENDING: keys.root_pending_key("foo-bar"),
    keys.ROOT_DUE: keys.ROOT_DUE_KEY,
}


def test_every_family_has_an_example_of_its_own() -> None:
    assert set(EXAMPLES) == set(FAMILIES)
    for family, key in EXAMPLES.items():
        found = keys.recognise(key)
        assert found is not None
        assert found.family is family


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_each_role_the_layout_names_is_granted_its_family(synth: Synth, family: Family) -> None:
    key = EXAMPLES[family]
    for role, fragment in ROLE_FRAGMENT.items():
        granted = _granted(synth, fragment)
        for access, action in ACTION.items():
            allowed = any(fnmatchcase(key, p) for p in granted.get(action, []) if p)
            if family.may(role, access):
                assert allowed, f"{role} may {access} {family.name} ({key}) but lacks {action}"


def test_no_role_holds_an_object_grant_the_layout_does_not_give(synth: Synth) -> None:
    for role, fragment in ROLE_FRAGMENT.items():
        granted = _granted(synth, fragment)
        for access, action in ACTION.items():
            assert sorted(p for p in granted.get(action, []) if p) == sorted(
                keys.grants(role, access)
            ), (role, action)
        object_actions = {a for a, ps in granted.items() if any(ps)}
        assert object_actions <= {*ACTION.values(), "s3:ListMultipartUploadParts"}, role


def test_the_indexer_can_never_delete_a_distribution(synth: Synth) -> None:
    granted = _granted(synth, ROLE_FRAGMENT[keys.INDEXER])
    assert not any(fnmatchcase(_FILE, p) for p in granted.get("s3:DeleteObject", []))
    assert any(fnmatchcase(keys.metadata_key(_FILE), p) for p in granted["s3:DeleteObject"])
