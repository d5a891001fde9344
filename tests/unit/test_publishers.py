"""Trusted publishers' matching rules, as a table (pure: no tokens are verified here)."""

from __future__ import annotations

from typing import Any

import pytest

from skypi.core.publishers import (
    GitHubPublisher,
    GitLabPublisher,
    InvalidPublisher,
    Match,
    NoMatch,
    OidcPublisher,
    Publisher,
    match,
    publisher_from_json,
)

GH = "https://token.actions.githubusercontent.com"
BY_IDS = GitHubPublisher.create(
    "octo/demo",
    workflow="release.yml",
    projects={"demo"},
    owner_id="501",
    repository_id="1001",
    environment="PyPI",
)
BY_NAME = GitHubPublisher.create("Octo/Demo", workflow="release.yml", projects={"demo"})
GITLAB = GitLabPublisher.create(
    "group/sub/demo", projects={"demo"}, ci_config_path="ci/release.yml", environment="prod"
)
GENERIC = OidcPublisher.create(
    "https://ci.example/", claims={"sub": "pipeline:demo", "branch": "main"}, projects={"demo"}
)


def github(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": GH,
        "repository": "octo/demo",
        "repository_owner_id": "501",
        "repository_id": "1001",
        "job_workflow_ref": "octo/demo/.github/workflows/release.yml@refs/tags/v1",
        "environment": "pypi",
        "sha": "f" * 40,
        "jti": "j",
    }
    return {k: v for k, v in {**claims, **changes}.items() if v is not None}


def gitlab(**changes: Any) -> dict[str, Any]:
    claims = {
        "iss": "https://gitlab.com",
        "project_path": "group/sub/demo",
        "ci_config_ref_uri": "gitlab.com/group/sub/demo//ci/release.yml@refs/tags/v1",
        "environment": "prod",
    }
    return {k: v for k, v in {**claims, **changes}.items() if v is not None}


@pytest.mark.parametrize(
    ("publisher", "claims", "problem"),
    [
        (BY_IDS, github(), None),
        (
            BY_IDS,
            github(
                repository="octo/renamed",
                job_workflow_ref="octo/renamed/.github/workflows/release.yml@refs/heads/main",
            ),
            None,
        ),  # renamed: ids hold
        (BY_IDS, github(repository_id="1002"), "repository_id is '1002'"),
        (BY_IDS, github(repository_owner_id="502"), "repository_owner_id is '502'"),
        (BY_IDS, github(repository_id=None), "no repository_id claim"),
        (BY_IDS, github(job_workflow_ref="octo/demo/.github/workflows/ci.yml@x"), "ci.yml"),
        (BY_IDS, github(job_workflow_ref="evil/lib/.github/workflows/release.yml@x"), "evil"),
        (BY_IDS, github(environment=None), "no environment claim"),
        (BY_IDS, github(environment="staging"), "environment is 'staging'"),
        (
            BY_NAME,
            github(
                repository="OCTO/demo",
                job_workflow_ref="OCTO/demo/.github/workflows/release.yml@v1",
                environment=None,
            ),
            None,
        ),
        (BY_NAME, github(repository="octo/demo2"), "repository is 'octo/demo2'"),
        (GITLAB, gitlab(), None),
        (GITLAB, gitlab(project_path="group/demo"), "project_path is 'group/demo'"),
        (
            GITLAB,
            gitlab(ci_config_ref_uri="gitlab.com/group/sub/demo//.gitlab-ci.yml@x"),
            "ci_config_ref_uri",
        ),
        (GITLAB, gitlab(environment="dev"), "environment is 'dev'"),
        (GENERIC, {"sub": "pipeline:demo", "branch": "main"}, None),
        (GENERIC, {"sub": "pipeline:demo", "branch": "dev"}, "branch is 'dev'"),
        (GENERIC, {"sub": "pipeline:demo"}, "no branch claim"),
    ],
)
def test_mismatch(publisher: Publisher, claims: dict[str, Any], problem: str | None) -> None:
    found = publisher.mismatch(claims)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_match_picks_the_issuers_publisher_and_keeps_the_audit_claims() -> None:
    result = match([GITLAB, BY_IDS], github())
    assert isinstance(result, Match)
    assert result.publisher is BY_IDS
    assert result.claims["sha"] == "f" * 40
    assert result.claims["repository_id"] == "1001"


def test_no_match_tells_the_client_only_what_its_token_says() -> None:
    result = match([BY_IDS], github(repository="octo/other", repository_id="9"))
    assert isinstance(result, NoMatch)
    assert "octo/other" in result.public
    assert "1001" not in result.public  # the registered ids stay private...
    assert "1001" in result.detail  # ...and go to the operator's log
    other_issuer = match([BY_IDS], {"iss": "https://elsewhere.example"})
    assert isinstance(other_issuer, NoMatch)
    assert "no trusted publisher is registered" in other_issuer.public


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: GitHubPublisher.create("octo", workflow="r.yml", projects={"a"}), "OWNER/REPO"),
        (lambda: GitHubPublisher.create("o/r/x", workflow="r.yml", projects={"a"}), "OWNER/REPO"),
        (lambda: GitHubPublisher.create("o/r", workflow="../x.yml", projects={"a"}), "file name"),
        (lambda: GitHubPublisher.create("o/r", workflow="r.yml", projects=set()), "--project"),
        (
            lambda: GitHubPublisher.create("o/r", workflow="r.yml", projects={"a"}, owner_id="x"),
            "is a number",
        ),
        (
            lambda: GitHubPublisher.create(
                "o/r", workflow="r.yml", projects={"a"}, issuer="http://ghes.example"
            ),
            "https URL",
        ),
        (lambda: GitLabPublisher.create("solo", projects={"a"}), "NAMESPACE/PROJECT"),
        (
            lambda: GitLabPublisher.create("g/p", projects={"a"}, ci_config_path="../x.yml"),
            "not a CI config path",
        ),
        (lambda: OidcPublisher.create("https://ci", claims={}, projects={"a"}), "at least one"),
        (
            lambda: OidcPublisher.create("https://ci", claims={"aud": "x"}, projects={"a"}),
            "checked for every token",
        ),
    ],
)
def test_invalid_publishers(make: Any, message: str) -> None:
    with pytest.raises(InvalidPublisher, match=message):
        make()


@pytest.mark.parametrize("publisher", [BY_IDS, BY_NAME, GITLAB, GENERIC])
def test_json_roundtrip_and_stable_id(publisher: Publisher) -> None:
    again = publisher_from_json(publisher.to_json())
    assert again == publisher
    assert again.id == publisher.id
    assert len(publisher.id) == 12


def test_the_same_trust_is_the_same_id() -> None:
    twin = GitHubPublisher.create("octo/demo", workflow=".github/workflows/release.yml",
                                  projects={"other"})  # fmt: skip
    assert twin.id == BY_NAME.id  # a second registration of it is refused, whatever the projects
    assert GENERIC.issuer == "https://ci.example"
    assert GENERIC.audience("index") == "index"
