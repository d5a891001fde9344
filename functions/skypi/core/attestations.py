"""PEP 740 attestations on upload, and the provenance object the index serves for a file.

What is checked here, on every attestation of an upload: it is a PEP 740 attestation object
(``version`` 1, ``verification_material`` with a certificate and transparency entries, an
``envelope`` with a statement and a signature), its statement is an in-toto v1 Statement, and
that statement's one subject is this very file: its name is the uploaded filename and its
``sha256`` digest the SHA-256 of the uploaded bytes. What is *not* checked: the Sigstore
signature, certificate chain and transparency-log inclusion (that needs Sigstore's trust root
and the ``sigstore`` stack, see ``docs/publishing.md``); verifiers such as
``pypi-attestations verify`` check those against the served provenance.

>>> statement = {"_type": IN_TOTO_STATEMENT, "subject": [{"name": "a-1.0.tar.gz",
...     "digest": {"sha256": "ab" * 32}}], "predicateType": "https://docs.pypi.org/attestations/publish/v1"}
>>> attestation = {"version": 1, "verification_material": {"certificate": "Y2VydA==",
...     "transparency_entries": [{}]}, "envelope": {"signature": "c2ln",
...     "statement": base64.b64encode(json.dumps(statement).encode()).decode()}}
>>> [a["version"] for a in parse_attestations(json.dumps([attestation]))]
[1]
>>> check_subjects(parse_attestations(json.dumps([attestation])), "a-1.0.tar.gz", "ab" * 32)
>>> check_subjects(parse_attestations(json.dumps([attestation])), "a-1.0.tar.gz", "cd" * 32)
Traceback (most recent call last):
...
skypi.core.errors.UploadRejected: Invalid attestations supplied during upload: the statement's ...
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from skypi.core.errors import UploadRejected
from skypi.core.keys import provenance_key as provenance_key

IN_TOTO_STATEMENT: Final = "https://in-toto.io/Statement/v1"
PROVENANCE_TYPE: Final = "application/vnd.pypi.integrity.v1+json"
MAX_ATTESTATIONS_BYTES: Final = 1024 * 1024  # the whole form field
MAX_ATTESTATIONS: Final = 8
INVALID_ATTESTATIONS: Final = "Invalid attestations supplied during upload: "  # as PyPI says


def _refuse(why: str) -> UploadRejected:
    return UploadRejected(INVALID_ATTESTATIONS + why)


def _b64(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise _refuse(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(f"{what} is not valid base64") from None


def parse_attestations(field: str) -> list[dict[str, Any]]:
    """The ``attestations`` form field: a JSON array of PEP 740 attestation objects."""
    if len(field.encode()) > MAX_ATTESTATIONS_BYTES:
        raise _refuse(f"the field is larger than {MAX_ATTESTATIONS_BYTES} bytes")
    try:
        doc = json.loads(field)
    except (ValueError, RecursionError):
        raise _refuse("the field is not JSON") from None
    if not isinstance(doc, list) or not doc:
        raise _refuse("expected a JSON array of attestation objects")
    if len(doc) > MAX_ATTESTATIONS:
        raise _refuse(f"at most {MAX_ATTESTATIONS} attestations per file")
    for attestation in doc:
        if not isinstance(attestation, dict) or attestation.get("version") != 1:
            raise _refuse("each attestation must be an object with version 1")
        material = attestation.get("verification_material")
        if not isinstance(material, dict):
            raise _refuse("an attestation has no verification_material")
        _b64(material.get("certificate"), "verification_material.certificate")
        entries = material.get("transparency_entries")
        if not isinstance(entries, list) or not entries:
            raise _refuse("an attestation has no transparency_entries")
        envelope = attestation.get("envelope")
        if not isinstance(envelope, dict):
            raise _refuse("an attestation has no envelope")
        _b64(envelope.get("signature"), "envelope.signature")
        _b64(envelope.get("statement"), "envelope.statement")
    return doc


def _statement(attestation: Mapping[str, Any]) -> dict[str, Any]:
    raw = _b64(attestation["envelope"]["statement"], "envelope.statement")
    try:
        statement = json.loads(raw)
    except (ValueError, RecursionError):
        raise _refuse("the envelope's statement is not JSON") from None
    if not isinstance(statement, dict) or statement.get("_type") != IN_TOTO_STATEMENT:
        raise _refuse(f"the statement must be an in-toto Statement ({IN_TOTO_STATEMENT})")
    if not isinstance(statement.get("predicateType"), str):
        raise _refuse("the statement has no predicateType")
    return statement


def check_subjects(attestations: Sequence[Mapping[str, Any]], filename: str, sha256: str) -> None:
    """Each statement must name exactly this file and its digest; one per predicate type."""
    seen: set[str] = set()
    for attestation in attestations:
        statement = _statement(attestation)
        if statement["predicateType"] in seen:
            raise _refuse(f"two attestations of type {statement['predicateType']!r}")
        seen.add(statement["predicateType"])
        subjects = statement.get("subject")
        if not isinstance(subjects, list) or len(subjects) != 1:
            raise _refuse("the statement must have exactly one subject: the uploaded file")
        subject = subjects[0]
        name = subject.get("name") if isinstance(subject, dict) else None
        if name != filename:
            raise _refuse(f"the statement's subject is {name!r}, not the uploaded {filename!r}")
        digest = subject.get("digest")
        got = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(got, str) or got.lower() != sha256:
            shown = f"{got[:4]}…" if isinstance(got, str) else repr(got)
            raise _refuse(
                f"the statement's subject digest {shown!r} is not the SHA-256 of {filename} "
                f"({sha256[:4]}…)."
            )


def publisher_of(claims: Mapping[str, str]) -> dict[str, Any]:
    """PEP 740's ``publisher`` object, from the claims recorded with a minted token."""
    if "job_workflow_ref" in claims:
        path = claims["job_workflow_ref"].partition("@")[0]
        return {
            "kind": "GitHub",
            "repository": claims.get("repository", ""),
            "workflow": path.rsplit("/", 1)[-1],
            "environment": claims.get("environment"),
        }
    if "project_path" in claims:
        uri = claims.get("ci_config_ref_uri", "").partition("@")[0]
        return {
            "kind": "GitLab",
            "repository": claims["project_path"],
            "workflow_filepath": uri.partition("//")[2],
            "environment": claims.get("environment"),
        }
    return {"kind": "OIDC", "claims": {k: v for k, v in claims.items() if k != "jti"}}


def provenance(attestations: Sequence[Mapping[str, Any]], claims: Mapping[str, str]) -> bytes:
    """The provenance object served for the file (PEP 740, version 1)."""
    bundle = {"publisher": publisher_of(claims), "attestations": list(attestations)}
    return json.dumps({"version": 1, "attestation_bundles": [bundle]}).encode()


def provenance_href(project: str, version: str, filename: str) -> str:
    """The ``provenance`` URL in the file's JSON entry, relative to ``/simple/<project>/``.

    >>> provenance_href("foo", "1.0+cpu", "foo-1.0+cpu-py3-none-any.whl")
    '../../integrity/foo/1.0%2Bcpu/foo-1.0%2Bcpu-py3-none-any.whl/provenance'
    """
    parts = (quote(p, safe="") for p in (project, version, filename))
    return "../../integrity/" + "/".join(parts) + "/provenance"
