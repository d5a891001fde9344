"""A local OIDC issuer standing in for GitHub Actions, and a TLS certificate for loopback.

The issuer serves OpenID discovery, its JWKS and GitHub's ID-token request endpoint (what
``ACTIONS_ID_TOKEN_REQUEST_URL`` points at) over https on 127.0.0.1, signing RS256 JWTs with
a key made for the test run. What the next token says is up to the test (``claims``).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.loopback import Loopback

REQUEST_TOKEN = "runner-request-token"


@dataclass(frozen=True)
class Tls:
    """A CA (``ca``, what clients trust via SSL_CERT_FILE) and a leaf for 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


def make_tls(folder: Path) -> Tls:
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "skypi test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls.key.chmod(0o600)
    return tls


def github_claims(repository: str = "octo/demo", **extra: Any) -> dict[str, Any]:
    """The identifying claims of a GitHub Actions token for ``repository``'s release.yml."""
    owner = repository.split("/")[0]
    return {
        "sub": f"repo:{repository}:ref:refs/tags/v1.0",
        "repository": repository,
        "repository_id": "1001" if repository == "octo/demo" else "2002",
        "repository_owner": owner,
        "repository_owner_id": "501",
        "job_workflow_ref": f"{repository}/.github/workflows/release.yml@refs/tags/v1.0",
        "workflow_ref": f"{repository}/.github/workflows/release.yml@refs/tags/v1.0",
        "ref": "refs/tags/v1.0",
        "sha": "0" * 40,
        "run_id": "42",
        "environment": "release",
        **extra,
    }


@dataclass
class Issuer:
    url: str
    key: rsa.RSAPrivateKey
    kid: str
    claims: dict[str, Any] = field(default_factory=github_claims)
    issued: list[str] = field(default_factory=list)
    fetches: dict[str, int] = field(default_factory=dict)
    replay: bool = False  # hand out the last token again

    @property
    def request_url(self) -> str:
        """ACTIONS_ID_TOKEN_REQUEST_URL: the runner appends ``&audience=...``."""
        return f"{self.url}/token?api-version=2.0"

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def token(self, audience: str, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            **self.claims,
            **overrides,
        }
        return self.sign({k: v for k, v in claims.items() if v is not None})

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, doc: Any) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            issuer.fetches[url.path] = issuer.fetches.get(url.path, 0) + 1
            if url.path == "/.well-known/openid-configuration":
                self._json(200, {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"})
            elif url.path == "/jwks":
                self._json(200, issuer.jwks())
            elif url.path == "/token":
                if self.headers.get("Authorization", "").lower() != f"bearer {REQUEST_TOKEN}":
                    self._json(401, {"message": "bad runner token"})
                    return
                # uv appends "&audience=..."; the `id` library adds "?audience=..." to a URL
                # that has a query already: take it from wherever it is, as GitHub does.
                found = re.search(r"[?&]audience=([^&]*)", "?" + url.query)
                audience = unquote_plus(found.group(1)) if found else "sigstore"
                if not (issuer.replay and issuer.issued):
                    issuer.issued.append(issuer.token(audience))
                self._json(200, {"count": 1, "value": issuer.issued[-1]})
            else:
                self._json(404, {"message": "not found"})

    return Handler


@contextmanager
def running_issuer(tls: Tls) -> Iterator[Issuer]:
    server = Loopback(BaseHTTPRequestHandler, tls=tls.server_context())  # its port first:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # the issuer names it
    issuer = Issuer(server.url("https"), key, kid=uuid.uuid4().hex[:16])
    server.server.RequestHandlerClass = _handler(issuer)
    with server:
        yield issuer


def make_attestation(filename: str, sha256: str, **statement: Any) -> dict[str, Any]:
    """A PEP 740 attestation object for ``filename``; its Sigstore parts are placeholders
    (skypi checks the statement's subject, not the signature: docs/publishing.md)."""
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": filename, "digest": {"sha256": sha256}}],
        "predicateType": "https://docs.pypi.org/attestations/publish/v1",
        "predicate": None,
        **statement,
    }
    encode = base64.b64encode
    return {
        "version": 1,
        "verification_material": {
            "certificate": encode(b"placeholder certificate").decode(),
            "transparency_entries": [{"logIndex": "1", "kindVersion": {"kind": "dsse"}}],
        },
        "envelope": {
            "statement": encode(json.dumps(body).encode()).decode(),
            "signature": encode(b"placeholder signature").decode(),
        },
    }
