"""Trusted publishers: which CI identities (OIDC token claims) may publish which projects.

The rules are PyPI's Trusted Publishing rules, as pure functions over the token's claims (the
signature, issuer, audience and lifetime are checked before any of this runs):

- **GitHub**: the repository (by its numeric ids when registered, which survive renames and
  cannot be taken over by whoever registers a deleted name; otherwise ``owner/repository``),
  the workflow file that runs the job (``job_workflow_ref``), and the environment if one is set.
- **GitLab**: ``namespace/project`` (``project_path``), the CI config file that runs
  (``ci_config_ref_uri``), and the environment if one is set.
- **Generic OIDC**: a fixed issuer, an audience and exact values for named claims.

>>> gh = GitHubPublisher.create(
...     "octo/demo", workflow="release.yml", projects={"Demo"}, owner_id="1", repository_id="2"
... )
>>> claims = {"repository": "octo/demo", "repository_owner_id": "1", "repository_id": "2",
...           "job_workflow_ref": "octo/demo/.github/workflows/release.yml@refs/tags/v1"}
>>> gh.mismatch(claims) is None
True
>>> gh.mismatch({**claims, "repository_id": "3"})
"repository_id is '3', the publisher expects '2'"
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from numbers import Real
from typing import Any, ClassVar, Final

from packaging.utils import NormalizedName, canonicalize_name

GITHUB_ISSUER: Final = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER: Final = "https://gitlab.com"
# Claims kept with a minted token (audit): who ran what, where, from which commit.
_AUDIT_CLAIMS: Final = (
    "sub",
    "jti",
    "repository",
    "repository_id",
    "repository_owner",
    "repository_owner_id",
    "job_workflow_ref",
    "workflow_ref",
    "ref",
    "sha",
    "run_id",
    "run_attempt",
    "actor",
    "environment",
    "project_path",
    "project_id",
    "namespace_path",
    "ci_config_ref_uri",
    "pipeline_id",
    "job_id",
    "user_login",
)
_SEGMENT: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NUMERIC: Final = re.compile(r"^[0-9]+$")


# Seconds of clock skew allowed on an OIDC token's exp, nbf and iat. The same figure bounds how
# long an exchanged token's jti is remembered: as long as verification could accept it again.
LEEWAY: Final = 30
_TIME_CLAIMS: Final = ("exp", "iat", "nbf")


def remembered_until(exp: float) -> datetime:
    """Until when an exchanged OIDC token with this ``exp`` must be remembered (a replay
    refused): the last instant verification, with :data:`LEEWAY`, would still take it.

    >>> remembered_until(1_000).timestamp()
    1030.0
    """
    return datetime.fromtimestamp(exp + LEEWAY, UTC)


def claim_type_problem(claims: Mapping[str, Any]) -> str | None:
    """Why these claims are not of the types RFC 7519 gives them, or None: ``exp``, ``iat`` and
    ``nbf`` are numbers (not strings, not booleans), ``jti`` and ``iss`` non-empty strings,
    ``aud`` a string or a list of strings.

    >>> claim_type_problem({"iss": "https://ci", "aud": "a", "jti": "j", "exp": "1700000000"})
    "the token's exp claim must be a number, not '1700000000'"
    >>> claim_type_problem({"iss": "https://ci", "aud": ["a"], "jti": "j", "exp": 1.5}) is None
    True
    """
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if name in claims and (not isinstance(value, Real) or isinstance(value, bool)):
            return f"the token's {name} claim must be a number, not {value!r:.40}"
    for name in ("iss", "jti"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            return f"the token's {name} claim must be a non-empty string"
    aud = claims.get("aud")
    if not isinstance(aud, str) and not (
        isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud)
    ):
        return "the token's aud claim must be a string or a list of strings"
    return None


class InvalidPublisher(ValueError):
    """A publisher that cannot be registered as given; the message says what to change."""


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return value if isinstance(value, str) else None


def _expect(claims: Mapping[str, Any], name: str, wanted: str, *, fold: bool = False) -> str | None:
    got = _text(claims, name)
    if got is None:
        return f"the token has no {name} claim"
    same = got.lower() == wanted.lower() if fold else got == wanted
    return None if same else f"{name} is {got!r}, the publisher expects {wanted!r}"


def _check_issuer(issuer: str) -> str:
    issuer = issuer.rstrip("/")
    if not re.match(r"^https://[^/?#@\s]+(/[^?#\s]*)?$", issuer):
        raise InvalidPublisher(f"the issuer must be an https URL without query: {issuer!r}")
    return issuer


def _check_projects(projects: set[str] | frozenset[str]) -> frozenset[NormalizedName]:
    if not projects:
        raise InvalidPublisher("give at least one project the publisher may publish (--project)")
    return frozenset(canonicalize_name(p) for p in projects)


def _path(text: str, what: str, *, parts: int | None = None) -> str:
    segments = text.strip("/").split("/")
    if (parts is not None and len(segments) != parts) or not all(
        _SEGMENT.match(s) for s in segments
    ):
        shape = "OWNER/REPOSITORY" if parts == 2 else "NAMESPACE/PROJECT"
        raise InvalidPublisher(f"{what} must look like {shape}: {text!r}")
    return "/".join(segments)


@dataclass(frozen=True)
class Publisher:
    """What every kind has: an id, the issuer, the projects, when it was added."""

    kind: ClassVar[str] = ""
    issuer: str
    projects: frozenset[NormalizedName]
    created: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)

    @property
    def id(self) -> str:
        """Stable and derived from what the publisher trusts, so adding one twice is caught."""
        body = json.dumps(self._identity(), sort_keys=True)
        return hashlib.sha256(f"{self.kind}:{body}".encode()).hexdigest()[:12]

    def _identity(self) -> dict[str, Any]:
        return {"issuer": self.issuer}

    def audience(self, index_audience: str) -> str:
        """The ``aud`` a token must carry to be exchanged for this publisher."""
        return index_audience

    def mismatch(self, claims: Mapping[str, Any]) -> str | None:
        """None when ``claims`` (already verified) are this publisher's; else why not."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def audit(self, claims: Mapping[str, Any]) -> dict[str, str]:
        """The claims kept with a token minted for this publisher."""
        kept = {name: claims[name] for name in _AUDIT_CLAIMS if name in claims}
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in kept.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "issuer": self.issuer,
            "projects": sorted(self.projects),
            "created": self.created.isoformat(),
            **self._fields(),
        }

    def _fields(self) -> dict[str, Any]:
        return {}


def _environment(claims: Mapping[str, Any], wanted: str | None) -> str | None:
    return None if wanted is None else _expect(claims, "environment", wanted, fold=True)


@dataclass(frozen=True)
class GitHubPublisher(Publisher):
    kind: ClassVar[str] = "github"
    repository: str = ""  # owner/name, as registered (shown; matched only without ids)
    workflow: str = ""  # the file name under .github/workflows/
    environment: str | None = None
    owner_id: str | None = None
    repository_id: str | None = None

    @classmethod
    def create(
        cls,
        repository: str,
        *,
        workflow: str,
        projects: set[str],
        environment: str | None = None,
        owner_id: str | None = None,
        repository_id: str | None = None,
        issuer: str = GITHUB_ISSUER,
    ) -> GitHubPublisher:
        workflow = workflow.strip().removeprefix(".github/workflows/")
        if not re.match(r"^[A-Za-z0-9._-]+\.ya?ml$", workflow):
            raise InvalidPublisher(
                f"the workflow is a file name in .github/workflows/, like release.yml: {workflow!r}"
            )
        for name, value in (("owner id", owner_id), ("repository id", repository_id)):
            if value is not None and not _NUMERIC.match(value):
                raise InvalidPublisher(
                    f"the {name} is a number (gh api repos/OWNER/REPO): {value!r}"
                )
        return cls(
            issuer=_check_issuer(issuer),
            projects=_check_projects(projects),
            repository=_path(repository, "the repository", parts=2),
            workflow=workflow,
            environment=environment or None,
            owner_id=owner_id,
            repository_id=repository_id,
        )

    def _identity(self) -> dict[str, Any]:
        repo = (
            {"owner_id": self.owner_id, "repository_id": self.repository_id}
            if self.repository_id
            else {"repository": self.repository.lower()}
        )
        return {**super()._identity(), **repo, "workflow": self.workflow, "env": self.environment}

    def mismatch(self, claims: Mapping[str, Any]) -> str | None:
        checks: list[str | None] = []
        if self.owner_id:
            checks.append(_expect(claims, "repository_owner_id", self.owner_id))
        if self.repository_id:
            checks.append(_expect(claims, "repository_id", self.repository_id))
        if not self.repository_id:
            checks.append(_expect(claims, "repository", self.repository, fold=True))
        if problem := next((c for c in checks if c), None):
            return problem
        repository = _text(claims, "repository") or ""
        ref = _text(claims, "job_workflow_ref")
        if ref is None:
            return "the token has no job_workflow_ref claim"
        wanted = f"{repository}/.github/workflows/{self.workflow}".lower()
        if ref.partition("@")[0].lower() != wanted:
            return f"job_workflow_ref is {ref!r}, the publisher expects the workflow {wanted}@…"
        return _environment(claims, self.environment)

    def describe(self) -> str:
        ids = f" (ids {self.owner_id}/{self.repository_id})" if self.repository_id else ""
        env = f" environment {self.environment}" if self.environment else ""
        return f"github {self.repository}{ids} workflow {self.workflow}{env}"

    def _fields(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "workflow": self.workflow,
            "environment": self.environment,
            "owner_id": self.owner_id,
            "repository_id": self.repository_id,
        }


@dataclass(frozen=True)
class GitLabPublisher(Publisher):
    kind: ClassVar[str] = "gitlab"
    project_path: str = ""  # namespace/project (namespaces may nest)
    ci_config_path: str = ".gitlab-ci.yml"
    environment: str | None = None

    @classmethod
    def create(
        cls,
        project_path: str,
        *,
        projects: set[str],
        ci_config_path: str = ".gitlab-ci.yml",
        environment: str | None = None,
        issuer: str = GITLAB_ISSUER,
    ) -> GitLabPublisher:
        path = _path(project_path, "the GitLab project")
        if "/" not in path:
            raise InvalidPublisher(f"the GitLab project must look like NAMESPACE/PROJECT: {path!r}")
        config = ci_config_path.strip().lstrip("/")
        if not config or any(p in {"", ".", ".."} for p in config.split("/")) or "@" in config:
            raise InvalidPublisher(f"not a CI config path: {ci_config_path!r}")
        return cls(
            issuer=_check_issuer(issuer),
            projects=_check_projects(projects),
            project_path=path,
            ci_config_path=config,
            environment=environment or None,
        )

    def _identity(self) -> dict[str, Any]:
        return {
            **super()._identity(),
            "project_path": self.project_path.lower(),
            "config": self.ci_config_path,
            "env": self.environment,
        }

    def mismatch(self, claims: Mapping[str, Any]) -> str | None:
        if problem := _expect(claims, "project_path", self.project_path, fold=True):
            return problem
        uri = _text(claims, "ci_config_ref_uri")
        if uri is None:
            return "the token has no ci_config_ref_uri claim"
        # <host>/<namespace>/<project>//<config path>@<ref>
        wanted = f"/{self.project_path}//{self.ci_config_path}".lower()
        if ("/" + uri.partition("@")[0].partition("/")[2]).lower() != wanted:
            return f"ci_config_ref_uri is {uri!r}, the publisher expects …{wanted}@…"
        return _environment(claims, self.environment)

    def describe(self) -> str:
        env = f" environment {self.environment}" if self.environment else ""
        return f"gitlab {self.project_path} config {self.ci_config_path}{env}"

    def _fields(self) -> dict[str, Any]:
        return {
            "project_path": self.project_path,
            "ci_config_path": self.ci_config_path,
            "environment": self.environment,
        }


_RESERVED_CLAIMS: Final = frozenset({"iss", "aud", "exp", "nbf", "iat", "jti"})


@dataclass(frozen=True)
class OidcPublisher(Publisher):
    """Any OIDC issuer (self-hosted CI): exact values for the claims that identify the job."""

    kind: ClassVar[str] = "oidc"
    claims: tuple[tuple[str, str], ...] = ()
    audience_override: str | None = None

    @classmethod
    def create(
        cls,
        issuer: str,
        *,
        claims: Mapping[str, str],
        projects: set[str],
        audience: str | None = None,
    ) -> OidcPublisher:
        reserved = _RESERVED_CLAIMS & set(claims)
        if reserved:
            raise InvalidPublisher(
                f"{', '.join(sorted(reserved))} are checked for every token; require the claims "
                "that name the job instead (sub, repository, ...)"
            )
        if not claims:
            raise InvalidPublisher(
                "require at least one claim (--claim sub=...): otherwise every token of this "
                "issuer could publish"
            )
        return cls(
            issuer=_check_issuer(issuer),
            projects=_check_projects(projects),
            claims=tuple(sorted(claims.items())),
            audience_override=audience or None,
        )

    def _identity(self) -> dict[str, Any]:
        return {**super()._identity(), "claims": dict(self.claims), "aud": self.audience_override}

    def audience(self, index_audience: str) -> str:
        return self.audience_override or index_audience

    def mismatch(self, claims: Mapping[str, Any]) -> str | None:
        return next((p for n, v in self.claims if (p := _expect(claims, n, v))), None)

    def audit(self, claims: Mapping[str, Any]) -> dict[str, str]:
        return {**super().audit(claims), **{n: str(claims[n]) for n, _ in self.claims}}

    def describe(self) -> str:
        required = ", ".join(f"{n}={v}" for n, v in self.claims)
        return f"oidc {self.issuer} ({required})"

    def _fields(self) -> dict[str, Any]:
        return {"claims": dict(self.claims), "audience": self.audience_override}


_KINDS: Final[dict[str, type[Publisher]]] = {
    k.kind: k for k in (GitHubPublisher, GitLabPublisher, OidcPublisher)
}


def publisher_from_json(data: Mapping[str, Any]) -> Publisher:
    kind = _KINDS[data["kind"]]
    common: dict[str, Any] = {
        "issuer": data["issuer"],
        "projects": frozenset(canonicalize_name(p) for p in data["projects"]),
        "created": datetime.fromisoformat(data["created"]),
    }
    if kind is GitHubPublisher:
        return GitHubPublisher(
            **common,
            repository=data["repository"],
            workflow=data["workflow"],
            environment=data.get("environment"),
            owner_id=data.get("owner_id"),
            repository_id=data.get("repository_id"),
        )
    if kind is GitLabPublisher:
        return GitLabPublisher(
            **common,
            project_path=data["project_path"],
            ci_config_path=data["ci_config_path"],
            environment=data.get("environment"),
        )
    return OidcPublisher(
        **common,
        claims=tuple(sorted(data["claims"].items())),
        audience_override=data.get("audience"),
    )


@dataclass(frozen=True)
class Match:
    publisher: Publisher
    claims: dict[str, str]  # what is kept with the minted token


@dataclass(frozen=True)
class NoMatch:
    """Why no publisher took a token: ``public`` names only what the token itself says (anyone
    can get a valid token from a public CI, so the registered publishers are never revealed);
    ``detail`` names the expected values too, for the operator's log."""

    public: str
    detail: str


def match(publishers: Sequence[Publisher], claims: Mapping[str, Any]) -> Match | NoMatch:
    """The publisher these verified claims belong to, or why none does.

    >>> match([], {"iss": "https://ci.example", "sub": "job"}).public
    "no trusted publisher is registered for the issuer 'https://ci.example'"
    """
    issuer = (_text(claims, "iss") or "").rstrip("/")
    candidates = [p for p in publishers if p.issuer == issuer]
    if not candidates:
        text = f"no trusted publisher is registered for the issuer {issuer!r}"
        return NoMatch(text, text)
    reasons = []
    for publisher in candidates:
        problem = publisher.mismatch(claims)
        if problem is None:
            return Match(publisher, publisher.audit(claims))
        reasons.append(f"{publisher.id} {publisher.describe()}: {problem}")
    shown = ", ".join(
        f"{name} {claims[name]!r}" for name in _SHOWN_CLAIMS if isinstance(claims.get(name), str)
    )
    return NoMatch(
        f"valid token, but no trusted publisher matches it ({shown or 'no identifying claims'})",
        "; ".join(reasons),
    )


_SHOWN_CLAIMS: Final = (
    "repository",
    "job_workflow_ref",
    "project_path",
    "ci_config_ref_uri",
    "environment",
    "sub",
)
