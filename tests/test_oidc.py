"""Trusted Publishing through the app: a real https issuer on loopback, real JWT checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skypi.api.app import create_app
from skypi.api.oidc import LEEWAY
from skypi.api.settings import Settings
from skypi.core.publishers import GitHubPublisher, OidcPublisher
from skypi.store.local import LocalStore
from skypi.store.publishers import PublisherRepository
from skypi.store.tokens import TokenRepository
from tests.conftest import basic
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.oidc import Issuer, Tls, github_claims, running_issuer

AUDIENCE = "skypi-test"


@pytest.fixture
def client(store: LocalStore, tls: Tls, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))  # the issuer's CA, as a test deploy has it
    return TestClient(create_app(store, Settings(oidc_audience=AUDIENCE)))


def _publisher(store: LocalStore, issuer: Issuer, **kwargs: Any) -> GitHubPublisher:
    publisher = GitHubPublisher.create(
        "octo/demo",
        workflow="release.yml",
        projects={"demo"},
        owner_id="501",
        repository_id="1001",
        issuer=issuer.url,
        **kwargs,
    )
    PublisherRepository(store).add(publisher)
    return publisher


def _refusal(response: Any) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "Token request failed"
    return body["errors"][0]["code"], body["errors"][0]["description"]


def test_audience(client: TestClient) -> None:
    assert client.get("/_/oidc/audience").json() == {"audience": AUDIENCE}


def test_mint_upload_burn_and_audit(client: TestClient, store: LocalStore, issuer: Issuer) -> None:
    publisher = _publisher(store, issuer, environment="release")
    response = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    assert body["token"].startswith("skypi_")
    assert abs(body["expires"] - (time.time() + 900)) < 60
    (record,) = TokenRepository(store).all()
    assert record.publisher == publisher.id
    assert record.scopes == {"upload"}
    assert record.projects == {"demo"}
    assert record.claims is not None
    assert record.claims["repository_id"] == "1001"
    assert record.claims["sha"] == "0" * 40

    data = wheel_bytes("demo", "1.0")
    form = upload_form(data, wheel_name("demo", "1.0"), "demo", "1.0")
    files = {"content": (wheel_name("demo", "1.0"), data)}
    assert client.post("/legacy/", data=form, files=files, headers=basic(body["token"])).is_success
    other = wheel_bytes("other", "1.0")
    form = upload_form(other, wheel_name("other", "1.0"), "other", "1.0")
    refused = client.post(
        "/legacy/",
        data=form,
        files={"content": (wheel_name("other", "1.0"), other)},
        headers=basic(body["token"]),
    )
    assert refused.status_code == 403  # limited to the publisher's projects

    assert client.post("/_/oidc/burn-token", json={"token": body["token"]}).is_success
    form = upload_form(data, wheel_name("demo", "1.0"), "demo", "1.0")
    again = client.post("/legacy/", data=form, files=files, headers=basic(body["token"]))
    assert again.status_code == 403
    assert "Expired" in again.text
    assert TokenRepository(store).all()[0].publisher == publisher.id  # kept for the audit


@pytest.mark.parametrize(
    ("overrides", "code", "reason"),
    [
        ({"repository_id": "2002", "repository": "octo/other"}, "invalid-publisher", "octo/other"),
        ({"environment": "staging"}, "invalid-publisher", "no trusted publisher matches"),
        (
            {"job_workflow_ref": "octo/demo/.github/workflows/ci.yml@refs/heads/main"},
            "invalid-publisher",
            "ci.yml",
        ),
        ({"aud": "pypi"}, "invalid-token", "audience is 'pypi'"),
        (
            {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},
            "invalid-token",
            "expired",
        ),
        ({"nbf": int(time.time()) + 3600}, "invalid-token", "not valid yet"),
        ({"jti": None}, "invalid-token", "jti"),
        ({"jti": 7}, "invalid-token", "JWT ID must be a string"),
        ({"exp": 10**12}, "invalid-token", "lives too long"),
        ({"exp": "soon"}, "invalid-token", "invalid OIDC token"),
        ({"iat": int(time.time()) + 3600}, "invalid-token", "not valid yet"),
        ({"repository_id": ["1001"]}, "invalid-publisher", "no trusted publisher matches"),
        # Every time claim a number, every string claim a string: a trusted issuer's token of
        # the wrong types is a refusal with the claim named, never a 500.
        # (a far-off exp: the cases are made at collection, minutes before a long run gets here)
        ({"exp": "4102444800"}, "invalid-token", "exp claim must be a number"),
        ({"iat": str(int(time.time()))}, "invalid-token", "iat"),
        ({"nbf": str(int(time.time()))}, "invalid-token", "nbf claim must be a number"),
        ({"exp": True}, "invalid-token", "exp"),
        ({"nbf": [1]}, "invalid-token", "nbf"),
        ({"jti": ""}, "invalid-token", "jti"),
        ({"jti": {"a": 1}}, "invalid-token", "JWT ID must be a string"),
        ({"aud": [AUDIENCE, 5]}, "invalid-token", "aud"),
        ({"sub": {"deep": [1, 2]}}, "invalid-token", "Subject must be a string"),
        ({"repository": {"deep": [1]}}, "invalid-publisher", "no trusted publisher matches"),
    ],
)
def test_refusals(
    client: TestClient,
    store: LocalStore,
    issuer: Issuer,
    overrides: dict[str, Any],
    code: str,
    reason: str,
) -> None:
    _publisher(store, issuer, environment="release")
    response = client.post(
        "/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE, **overrides)}
    )
    assert _refusal(response)[0] == code
    assert reason in _refusal(response)[1]
    assert TokenRepository(store).all() == []


def test_replay_is_refused(client: TestClient, store: LocalStore, issuer: Issuer) -> None:
    _publisher(store, issuer)
    token = issuer.token(AUDIENCE)
    assert client.post("/_/oidc/mint-token", json={"token": token}).status_code == 200
    code, reason = _refusal(client.post("/_/oidc/mint-token", json={"token": token}))
    assert code == "invalid-reuse-token"
    assert "exchanged already" in reason


def test_a_replay_within_the_leeway_after_exp_is_refused(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    """Verification takes a token up to LEEWAY seconds after its exp, so its jti is remembered
    that long too: past exp, within the leeway, it is exchanged once and then refused."""
    _publisher(store, issuer)
    now = int(time.time())
    token = issuer.token(AUDIENCE, exp=now - LEEWAY // 2, iat=now - 60, nbf=now - 60)
    assert client.post("/_/oidc/mint-token", json={"token": token}).status_code == 200
    code, _ = _refusal(client.post("/_/oidc/mint-token", json={"token": token}))
    assert code == "invalid-reuse-token"
    assert len(TokenRepository(store).all()) == 1


def test_deeply_nested_json_is_refused_without_a_credential(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    """Brackets nested past Python's recursion limit, as the body or inside the JWT, are a
    422 with a reason at both OIDC endpoints."""
    _publisher(store, issuer)
    deep = b"[" * 60_000 + b"]" * 60_000
    for route in ("/_/oidc/mint-token", "/_/oidc/burn-token"):
        for body in (deep[:60_000], b'{"token": ' + deep[:30_000] + b"}"):
            response = client.post(route, content=body)
            assert response.status_code == 422, (route, response.text[:200])
            assert response.json()["errors"][0]["code"] == "invalid-payload"
    import jwt

    inside = jwt.encode({"iss": issuer.url, "aud": AUDIENCE, "x": 1}, issuer.key, "RS256")
    header, _, signature = inside.split(".")
    payload = jwt.utils.base64url_encode(b'{"iss": ' + b"[" * 5_000 + b"]" * 5_000 + b"}")
    token = f"{header}.{payload.decode()}.{signature}"
    code, reason = _refusal(client.post("/_/oidc/mint-token", json={"token": token}))
    assert code == "invalid-token"
    assert "malformed" in reason
    assert TokenRepository(store).all() == []


def test_forged_and_hostile_tokens(client: TestClient, store: LocalStore, issuer: Issuer) -> None:
    _publisher(store, issuer)
    good = issuer.token(AUDIENCE)
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert "signature" in _refusal(client.post("/_/oidc/mint-token", json={"token": tampered}))[1]
    # Another key under the issuer's key id: refused by the signature, not trusted.
    from cryptography.hazmat.primitives.asymmetric import rsa

    forger = Issuer(
        issuer.url, rsa.generate_private_key(public_exponent=65537, key_size=2048), issuer.kid
    )
    forged = forger.token(AUDIENCE)
    assert "signature" in _refusal(client.post("/_/oidc/mint-token", json={"token": forged}))[1]
    import jwt

    hs = jwt.encode({"iss": issuer.url, "aud": AUDIENCE}, "s" * 32, algorithm="HS256")
    assert "algorithm" in _refusal(client.post("/_/oidc/mint-token", json={"token": hs}))[1]
    none = jwt.encode({"iss": issuer.url, "aud": AUDIENCE}, None, algorithm="none")
    assert _refusal(client.post("/_/oidc/mint-token", json={"token": none}))[0] == "invalid-token"
    unknown_kid = issuer.sign({"iss": issuer.url, "aud": AUDIENCE}, kid="rotated-away")
    assert (
        "no signing key"
        in _refusal(client.post("/_/oidc/mint-token", json={"token": unknown_kid}))[1]
    )
    for body in (b"", b"not json", b"[]", b'{"token": 5}', b'{"token": "a.b.c"}'):
        response = client.post("/_/oidc/mint-token", content=body)
        assert response.status_code == 422, body
        assert response.json()["errors"][0]["code"] in {"invalid-payload", "invalid-token"}
    assert client.post("/_/oidc/mint-token", content=b"x" * 100_000).status_code == 413
    unknown = Issuer("https://ci.invalid", issuer.key, issuer.kid).token(AUDIENCE)
    code, reason = _refusal(client.post("/_/oidc/mint-token", json={"token": unknown}))
    assert code == "invalid-publisher"
    assert "ci.invalid" in reason
    assert "/jwks" not in {k for k, v in issuer.fetches.items() if v > 1}  # cached
    assert TokenRepository(store).all() == []


def test_key_rotation_is_picked_up_within_bounds(
    client: TestClient, store: LocalStore, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("skypi.api.oidc.JWKS_COOLDOWN", 1.0)
    _publisher(store, issuer)
    assert client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)}).is_success
    from cryptography.hazmat.primitives.asymmetric import rsa

    issuer.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.kid = "rotated"
    # Within the cooldown an unknown key id costs no fetch (a flood of made-up ids is cheap)...
    for _ in range(5):
        refused = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)})
        assert "no signing key" in _refusal(refused)[1]
    assert issuer.fetches["/jwks"] == 1
    time.sleep(1.1)
    # ...after it, the new key is fetched once and used.
    response = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)})
    assert response.status_code == 200, response.text
    assert issuer.fetches["/jwks"] == 2


def test_generic_publisher_and_burn_of_other_tokens(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    PublisherRepository(store).add(
        OidcPublisher.create(
            issuer.url, claims={"sub": "pipeline:release"}, projects={"demo"}, audience="custom"
        )
    )
    issuer.claims = {"sub": "pipeline:release"}
    assert client.post("/_/oidc/mint-token", json={"token": issuer.token("custom")}).is_success
    code, _ = _refusal(
        client.post("/_/oidc/mint-token", json={"token": issuer.token("custom", sub="other")})
    )
    assert code == "invalid-publisher"
    from tests.conftest import add_token

    operator = add_token(store, "admin")
    assert (
        _refusal(client.post("/_/oidc/burn-token", json={"token": operator}))[0] == "invalid-token"
    )


def test_two_publishers_of_one_issuer_each_take_only_their_own_audience(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    """One issuer, two publishers with their own audiences: a token is checked against the
    audience of the publisher its claims match, not against any audience of that issuer, so
    a token issued for one publisher never mints for the other."""
    for who, audience in (("a", "aud-a"), ("b", "aud-b")):
        PublisherRepository(store).add(
            OidcPublisher.create(
                issuer.url,
                claims={"sub": f"pipeline:{who}"},
                projects={f"project-{who}"},
                audience=audience,
            )
        )
    issuer.claims = {"sub": "pipeline:a"}
    for who, audience in (("a", "aud-a"), ("b", "aud-b")):  # each with its own: minted
        minted = client.post(
            "/_/oidc/mint-token", json={"token": issuer.token(audience, sub=f"pipeline:{who}")}
        )
        assert minted.is_success, minted.text
    crossed = issuer.token("aud-a", sub="pipeline:b")  # b's claims, a's audience
    code, description = _refusal(client.post("/_/oidc/mint-token", json={"token": crossed}))
    assert code == "invalid-token"
    assert "'aud-b'" in description


def test_publishers_stored_beside_tokens(store: LocalStore, folder: Path) -> None:
    repo = PublisherRepository(store)
    publisher = GitHubPublisher.create("octo/demo", workflow="release.yml", projects={"Demo_X"})
    repo.add(publisher)
    with pytest.raises(KeyError, match="registered already"):
        repo.add(publisher)
    assert [p.id for p in repo.all()] == [publisher.id]
    assert (folder / ".skypi" / "auth" / "publishers.json").is_file()
    assert repo.remove(publisher.id[:6]).id == publisher.id
    assert repo.all() == []


def _attested_upload(
    client: TestClient, token: str, data: bytes, attestations: object, version: str = "1.0"
) -> Any:
    import json as _json

    filename = wheel_name("demo", version)
    form = upload_form(data, filename, "demo", version)
    form["attestations"] = _json.dumps(attestations)
    return client.post(
        "/legacy/", data=form, files={"content": (filename, data)}, headers=basic(token)
    )


def test_attestations_with_trusted_publishing(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    import hashlib

    from tests.conftest import add_token
    from tests.oidc import make_attestation

    _publisher(store, issuer, environment="release")
    minted = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)}).json()
    data = wheel_bytes("demo", "1.0")
    filename, sha256 = wheel_name("demo", "1.0"), hashlib.sha256(data).hexdigest()

    # A statement about other bytes, or another file, is refused, and leaves nothing behind.
    for bad, why in (
        ([make_attestation(filename, "0" * 64)], "is not the SHA-256"),
        ([make_attestation("demo-9.9-py3-none-any.whl", sha256)], "not the uploaded"),
        ([make_attestation(filename, sha256, _type="x")], "in-toto Statement"),
        ([make_attestation(filename, sha256)] * 2, "two attestations of type"),
    ):
        refused = _attested_upload(client, minted["token"], data, bad)
        assert refused.status_code == 400
        assert why in refused.text
    assert not list(store.packages_dir.rglob("demo-*"))
    # A long-lived token's upload carries no trusted publisher to attest: refused, as on PyPI.
    plain = add_token(store, "upload")
    refused = _attested_upload(client, plain, data, [make_attestation(filename, sha256)])
    assert "only from uploads with trusted publishing" in refused.text

    # Well formed, about this very file, but not signed by Sigstore: refused by the signature.
    placeholder = _attested_upload(
        client, minted["token"], data, [make_attestation(filename, sha256)]
    )
    assert placeholder.status_code == 400
    assert "does not verify" in placeholder.text
    assert not list(store.packages_dir.rglob("demo-*"))


ASSETS = Path(__file__).parent / "assets" / "pep740"
REAL = "pypi_attestations-0.0.19.tar.gz"  # signed by trailofbits/pypi-attestations' release.yml


def _real_publisher(store: LocalStore, issuer: Issuer, repository: str, workflow: str) -> None:
    PublisherRepository(store).add(
        GitHubPublisher.create(
            repository, workflow=workflow, projects={"pypi-attestations"}, issuer=issuer.url
        )
    )
    issuer.claims = github_claims(
        repository,
        job_workflow_ref=f"{repository}/.github/workflows/{workflow}@refs/tags/v0.0.19",
        environment=None,
    )


def _upload_real(client: TestClient, token: str, attestation: object) -> Any:
    import json as _json

    data = (ASSETS / REAL).read_bytes()
    form = upload_form(data, REAL, "pypi-attestations", "0.0.19")
    form["attestations"] = _json.dumps([attestation])
    return client.post("/legacy/", data=form, files={"content": (REAL, data)}, headers=basic(token))


def test_a_real_sigstore_attestation_verifies_and_is_served(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    import json as _json

    attestation = _json.loads((ASSETS / f"{REAL}.publish.attestation").read_text())
    _real_publisher(store, issuer, "trailofbits/pypi-attestations", "release.yml")
    minted = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)}).json()
    response = _upload_real(client, minted["token"], attestation)
    assert response.status_code == 200, response.text
    page = client.get(
        "/simple/pypi-attestations/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    (entry,) = page.json()["files"]
    assert entry["provenance"] == f"../../integrity/pypi-attestations/0.0.19/{REAL}/provenance"
    assert "dist-info-metadata" not in entry
    assert "provenance" not in client.get("/simple/pypi-attestations/").text  # HTML frozen
    served = client.get(f"/integrity/pypi-attestations/0.0.19/{REAL}/provenance")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/vnd.pypi.integrity.v1+json"
    (bundle,) = served.json()["attestation_bundles"]
    assert bundle["publisher"] == {
        "kind": "GitHub",
        "repository": "trailofbits/pypi-attestations",
        "workflow": "release.yml",
        "environment": None,
    }
    assert bundle["attestations"] == [attestation]
    # pypi-attestations, as a consumer would run it, accepts what skypi serves.
    from pypi_attestations import Distribution, Provenance

    provenance = Provenance.model_validate_json(served.content)
    served_bundle = provenance.attestation_bundles[0]
    dist = Distribution(name=REAL, digest=entry["hashes"]["sha256"])
    served_bundle.attestations[0].verify(served_bundle.publisher, dist, offline=True)
    assert client.get(f"/integrity/pypi-attestations/0.0.18/{REAL}/provenance").status_code == 404


def test_a_real_attestation_from_another_publisher_is_refused(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    import json as _json

    attestation = _json.loads((ASSETS / f"{REAL}.publish.attestation").read_text())
    # The token is octo/fork's, the signature trailofbits/pypi-attestations': not this publisher.
    _real_publisher(store, issuer, "octo/fork", "release.yml")
    minted = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)}).json()
    response = _upload_real(client, minted["token"], attestation)
    assert response.status_code == 400
    assert "does not verify" in response.text
    assert not list(store.packages_dir.rglob("pypi_attestations-*"))


def test_provenance_needs_a_read_token_on_a_private_index(
    store: LocalStore, issuer: Issuer, tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json as _json

    from tests.conftest import add_token

    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
    client = TestClient(create_app(store, Settings(oidc_audience=AUDIENCE, private=True)))
    _real_publisher(store, issuer, "trailofbits/pypi-attestations", "release.yml")
    minted = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)}).json()
    attestation = _json.loads((ASSETS / f"{REAL}.publish.attestation").read_text())
    assert _upload_real(client, minted["token"], attestation).status_code == 200
    url = f"/integrity/pypi-attestations/0.0.19/{REAL}/provenance"
    assert client.get(url).status_code == 401
    other = add_token(store, "read", projects={"something-else"})
    assert client.get(url, headers=basic(other)).status_code == 403
    reader = add_token(store, "read", projects={"pypi-attestations"})
    assert client.get(url, headers=basic(reader)).status_code == 200


def test_a_real_gitlab_attestation_verifies(
    client: TestClient, store: LocalStore, issuer: Issuer
) -> None:
    import json as _json

    from skypi.core.publishers import GitLabPublisher

    sdist = "gitlab_oidc_project-0.0.3.tar.gz"  # signed by facutuesca/gitlab-oidc-project's CI
    PublisherRepository(store).add(
        GitLabPublisher.create(
            "facutuesca/gitlab-oidc-project", projects={"gitlab-oidc-project"}, issuer=issuer.url
        )
    )
    issuer.claims = {
        "sub": "project_path:facutuesca/gitlab-oidc-project:ref_type:branch:ref:main",
        "project_path": "facutuesca/gitlab-oidc-project",
        "ci_config_ref_uri": "gitlab.com/facutuesca/gitlab-oidc-project//.gitlab-ci.yml"
        "@refs/heads/main",
    }
    minted = client.post("/_/oidc/mint-token", json={"token": issuer.token(AUDIENCE)}).json()
    data = (ASSETS / sdist).read_bytes()
    form = upload_form(data, sdist, "gitlab-oidc-project", "0.0.3")
    form["attestations"] = (ASSETS / f"{sdist}.publish.attestation").read_text()
    form["attestations"] = _json.dumps([_json.loads(form["attestations"])])
    response = client.post(
        "/legacy/", data=form, files={"content": (sdist, data)}, headers=basic(minted["token"])
    )
    assert response.status_code == 200, response.text
    served = client.get(f"/integrity/gitlab-oidc-project/0.0.3/{sdist}/provenance").json()
    assert served["attestation_bundles"][0]["publisher"] == {
        "kind": "GitLab",
        "repository": "facutuesca/gitlab-oidc-project",
        "workflow_filepath": ".gitlab-ci.yml",
        "environment": None,
    }


def test_an_issuer_that_cannot_be_reached_is_a_503_not_a_bad_token(
    client: TestClient, store: LocalStore, tls: Tls
) -> None:
    with running_issuer(tls) as gone:
        token = gone.token(AUDIENCE)
        PublisherRepository(store).add(
            GitHubPublisher.create("octo/demo", workflow="release.yml", projects={"demo"},
                                   issuer=gone.url)
        )  # fmt: skip
    response = client.post("/_/oidc/mint-token", json={"token": token})  # issuer is down now
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "issuer-unavailable"
