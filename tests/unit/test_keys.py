"""The key layout (``skypi.core.keys``): every builder's key is recognised as its own family and
project, hostile names are never taken for a project, and no other module spells a prefix."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.utils import InvalidName, canonicalize_name

from skypi.core import keys
from skypi.core.keys import (
    AUTH_RECORD,
    DISTRIBUTION,
    FAMILIES,
    HELD_FILES,
    LANDING,
    LEGACY_LANDING,
    LOCAL_STATE,
    METADATA,
    NAMESPACE_DOCUMENT,
    NAMESPACE_RECORDS,
    OSV_DATA,
    PAGE_OBJECTS,
    PROJECT_PAGE,
    PROJECT_SITE,
    PROVENANCE,
    RELEASE,
    ROOT_DUE,
    ROOT_LISTING,
    ROOT_PENDING,
    VIEW_FILE,
    VIEW_PAGE,
    VIEW_POLICY_RECORD,
    VIEW_ROOT,
    VIEW_UPSTREAM_PAGE,
    Family,
    Recognised,
    file_key,
    gzip_key,
    held_files_key,
    is_project,
    metadata_key,
    namespace_key,
    page_key,
    project_site_key,
    provenance_key,
    recognise,
    release_key,
    root_pending_key,
    view_file_key,
    view_key,
    view_policy_key,
    view_upstream_key,
)

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = ("foo", "foo-bar", "a", "1", "x9-y-z0")
FILENAMES = ("foo-1.0.tar.gz", "foo-1.0+cpu-py3-none-any.whl", "foo-1.0%2B.zip", "a..b", "é.whl")
VERSIONS = ("1.0", "1.0+cpu", "1!2.0.post1", "1.0%2Bcpu", "1/2", "ü", ".", "..")
# Texts no builder is given as a project: not normalized, or not a name at all.
HOSTILE = ("Foo", "foo.bar", "foo_bar", "foo+bar", "foo%2Fbar", "fóo", "ﬀ", "foo-", "-foo")
HOSTILE += ("foo--bar", "%", "+", "..", ".", "", "foo\x00", "ＦＯＯ", "foo bar", "İ")


def built(project: str, filename: str, version: str) -> list[tuple[str, Recognised]]:
    """Every builder's key for ``project``, with what it must be recognised as."""
    file = file_key(project, filename)
    cases = [
        (file, Recognised(DISTRIBUTION, project, filename)),
        (metadata_key(file), Recognised(METADATA, project, filename)),
        (project_site_key(project), Recognised(PROJECT_SITE, project, "index.html")),
        (release_key(project, version), Recognised(RELEASE, project, version)),
        (provenance_key(project, filename), Recognised(PROVENANCE, project, filename)),
        (held_files_key(project, "0f" * 32), Recognised(HELD_FILES, project, "0f" * 32)),
        (root_pending_key(project), Recognised(ROOT_PENDING, project, project)),
    ]
    for kind, name in PAGE_OBJECTS.items():
        page = page_key(project, kind)
        cases.append((page, Recognised(PROJECT_PAGE, project, name)))
        cases.append((gzip_key(page), Recognised(PROJECT_PAGE, project, name, gzipped=True)))
        viewed = view_key("safe", page)
        cases.append((viewed, Recognised(VIEW_PAGE, project, name)))
        cases.append((gzip_key(viewed), Recognised(VIEW_PAGE, project, name, gzipped=True)))
    if not filename.startswith("."):
        cases.append(
            (view_file_key("safe", project, filename), Recognised(VIEW_FILE, project, filename))
        )
    cases.append(
        (view_upstream_key("safe", project), Recognised(VIEW_UPSTREAM_PAGE, project, "safe"))
    )
    return cases


@pytest.mark.parametrize("project", PROJECTS)
@pytest.mark.parametrize("filename", FILENAMES)
@pytest.mark.parametrize("version", VERSIONS)
def test_every_builder_is_recognised_as_its_family_and_project(
    project: str, filename: str, version: str
) -> None:
    for key, expected in built(project, filename, version):
        assert recognise(key) == expected, key


def test_the_keys_without_a_project_are_recognised() -> None:
    for kind, name in PAGE_OBJECTS.items():
        assert recognise(page_key(None, kind)) == Recognised(ROOT_LISTING, None, name)
        assert recognise(gzip_key(page_key(None, kind))) == Recognised(
            ROOT_LISTING, None, name, gzipped=True
        )
    assert recognise(keys.LANDING_KEY) == Recognised(LANDING, None, "index.html")
    assert recognise(keys.LEGACY_SITE_JSON_KEY) == Recognised(LEGACY_LANDING, None, "index.json")
    for record in (keys.TOKENS_KEY, keys.PUBLISHERS_KEY, keys.USED_OIDC_KEY):
        assert recognise(record) == Recognised(AUTH_RECORD, None, record)
    assert recognise(keys.FINGERPRINTS_KEY) == Recognised(LOCAL_STATE, None, keys.FINGERPRINTS_KEY)
    records = keys.NAMESPACE_RECORDS_KEY
    assert recognise(records) == Recognised(NAMESPACE_RECORDS, None, records)
    assert recognise(namespace_key(None)) == Recognised(NAMESPACE_DOCUMENT, None, "index.json")
    assert recognise(keys.VIEW_DUE_KEY) == Recognised(keys.VIEW_DUE, None, keys.VIEW_DUE_KEY)
    for name in PROJECTS:  # a namespace is named like a project, but is none
        assert recognise(namespace_key(name)) == Recognised(NAMESPACE_DOCUMENT, None, name)
    assert recognise(view_policy_key("safe")) == Recognised(VIEW_POLICY_RECORD, None, "safe")
    for kind, name in PAGE_OBJECTS.items():
        root = view_key("safe", page_key(None, kind))
        assert recognise(root) == Recognised(VIEW_ROOT, None, name)
    assert recognise(keys.OSV_KEY) == Recognised(OSV_DATA, None, keys.OSV_KEY)
    assert recognise(keys.ROOT_DUE_KEY) == Recognised(ROOT_DUE, None, "root-due.json")
    # A folder index keeps files where it likes: a distribution, whose project is its name's.
    assert recognise("packages/foo-1.0.tar.gz") == Recognised(DISTRIBUTION, None, "foo-1.0.tar.gz")
    assert recognise("packages/a/b/c.whl") == Recognised(DISTRIBUTION, None, "c.whl")


@pytest.mark.parametrize("name", HOSTILE)
def test_a_name_that_is_no_normalized_project_is_never_a_project(name: str) -> None:
    assert not is_project(name)
    if "/" in name or name in {"", ".", ".."}:
        with pytest.raises(ValueError, match="storage key"):
            file_key(name, "foo-1.0.tar.gz")
        return
    for key, _ in built(name, "foo-1.0.tar.gz", "1.0"):
        found = recognise(key)
        assert found is None or found.project is None, key  # a file still is a file


@given(st.text(max_size=24))
def test_the_recogniser_agrees_with_packaging_on_what_a_project_is(text: str) -> None:
    """A project segment is recognised exactly when it is a valid name already normalized."""
    try:
        normal = canonicalize_name(text, validate=True) == text
    except InvalidName:
        normal = False
    assert is_project(text) == normal
    if "/" not in text and text not in {"", ".", ".."}:
        found = recognise(page_key(text, "json"))
        assert (found is not None and found.project == text) == normal


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
def test_any_key_is_recognised_once_or_not_at_all(key: str) -> None:
    """Hostile keys (an S3 event, a listing) never raise, and a project is always normalized."""
    found = recognise(key)
    if found is not None:
        assert found.family in FAMILIES
        assert found.project is None or is_project(found.project)
        assert ".." not in key.split("/")


def test_keys_outside_the_layout_are_not_recognised() -> None:
    for key in (
        "simple/foo/index.htm",
        "simple/foo/bar/index.json",
        "simple/index.json.gz.gz",
        "simple/",
        "site/project/foo/index.json.gz",
        "site/project/foo/1.0%2bcpu.json",  # not as release_key quotes it
        "site/project/foo/.json",
        "site/other.html",
        "integrity/foo/x/provenance",
        "integrity/foo/.x/provenance.json",
        "auth/other.json",
        "local/other.json",
        "namespaces/Acme/index.json",
        "namespaces/acme/records.json",
        "namespaces/acme/index.json.gz",
        "namespaces/other.json",
        "held/foo/abc.json",  # not a SHA-256
        "held/Foo/" + "ab" * 32 + ".json",
        "packages/foo/.hidden.whl",
        "views/Safe/policy.json",
        "views/safe/simple/Foo/index.json",
        "views/safe/simple/",
        "views/safe/upstream/foo.html",
        "views/safe/files/foo/.hidden.whl",
        "views/safe/files/foo-1.0.tar.gz",
        "views/safe/other",
        "views/due.json.gz",
        "views/safe/due.json",
        "views/safe/pinned/2026-1-1/simple/foo/index.json",
        "views/safe/pinned/simple/foo/index.json",
        "osv/other.json",
        "pending/root/Foo.json",
        "pending/root/foo",
        "pending/root/a/b.json",
        "pending/other.json",
        "packages/../simple/index.json",
        "packages//foo.whl",
        "other/foo",
        "packages",
        "",
    ):
        assert recognise(key) is None, key


def test_each_family_has_a_grant_that_covers_its_prefix_and_a_distinct_name() -> None:
    names = [family.name for family in FAMILIES]
    assert len(set(names)) == len(names)
    samples: dict[Family, list[str]] = {family: [] for family in FAMILIES}
    for key, expected in built("foo", "foo-1.0.tar.gz", "1.0"):
        samples[expected.family].append(key)
    samples[ROOT_LISTING].append(page_key(None, "json"))
    samples[LANDING].append(keys.LANDING_KEY)
    samples[LEGACY_LANDING].append(keys.LEGACY_SITE_JSON_KEY)
    samples[AUTH_RECORD].append(keys.TOKENS_KEY)
    samples[LOCAL_STATE].append(keys.FINGERPRINTS_KEY)
    samples[NAMESPACE_RECORDS].append(keys.NAMESPACE_RECORDS_KEY)
    samples[NAMESPACE_DOCUMENT] += [namespace_key(None), namespace_key("acme")]
    samples[VIEW_POLICY_RECORD].append(view_policy_key("safe"))
    samples[VIEW_ROOT].append(view_key("safe", page_key(None, "json")))
    samples[OSV_DATA].append(keys.OSV_KEY)
    samples[keys.VIEW_DUE].append(keys.VIEW_DUE_KEY)
    samples[ROOT_DUE].append(keys.ROOT_DUE_KEY)
    for family, examples in samples.items():
        assert examples, family
        pattern = re.compile(re.escape(family.grant).replace(r"\*", ".*"))
        for key in examples:
            assert pattern.fullmatch(key), (family, key)  # IAM's * spans /


def test_what_each_role_is_granted_follows_from_the_layout() -> None:
    # never a distribution; the root listing's pending records once merged
    assert keys.grants("indexer", "delete") == ("packages/*.metadata", "pending/*")
    assert keys.grants("indexer", "versions") == ("packages/*",)  # a restore's source
    assert keys.grants("indexer", "write") == (
        "packages/*",
        "simple/*",
        "site/*",
        "held/*",
        "pending/*",
    )
    # on AWS, tokens and publishers are in DynamoDB: no role of the stack touches auth/
    assert not any("auth/*" in keys.grants(r, a) for r in keys.ROLES for a in keys.ACCESSES)
    assert keys.grants("api", "write") == (
        "packages/*",
        "simple/*",
        "site/*",
        "integrity/*",
        "held/*",
        "namespaces/records.json",
        "namespaces/*index.json",
        "pending/*",
    )
    # namespaces are the admin API's to change; the indexer only reads their records
    assert keys.grants("indexer", "read")[-2:] == ("namespaces/records.json", "pending/*")
    assert keys.grants("api", "delete")[-1] == "namespaces/*index.json"  # never the records
    for family in FAMILIES:
        for role, accesses in family.access.items():
            assert role in keys.ROLES
            assert set(accesses) <= set(keys.ACCESSES)
            for access in accesses:
                granted = keys.grants(role, access)
                assert any(keys._covers(p, family.grant) or p == family.grant for p in granted)


def test_no_module_but_the_layout_spells_a_storage_prefix() -> None:
    """Where a key is built or matched, it comes from skypi.core.keys; what is left are URLs
    (``/simple/`` links, the doctor's requests), help texts, comments and doctest examples."""
    pattern = r"\"(simple|site|packages|auth|integrity|local|pending)/"
    found = subprocess.run(
        ["git", "grep", "--untracked", "-nE", pattern, "--", "functions/skypi", "infra"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    left = [
        line
        for line in found
        if not line.startswith("functions/skypi/core/keys.py:")
        and not re.search(r":\s*>>> |\{PROJECT\}/|href=|packages/<project>|\"key\": |#.*\"", line)
    ]
    assert left == []
