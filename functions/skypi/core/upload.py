"""The legacy upload API's rules (what twine and ``uv publish`` send), as PyPI applies them.

Pure checks over the form fields, the computed digests and the file's own metadata; the handler
only moves bytes. Messages follow Warehouse's so users can search for them
(reference/standards.md §5.3, vectors §9.4).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any, Final

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from skypi.core.attestations import (
    check_subjects,
    parse_attestations,
    provenance,
    provenance_href,
)
from skypi.core.digests import hash_stream
from skypi.core.errors import Discontinued, InvalidDistribution, UploadRejected
from skypi.core.filenames import (
    VALID_PROJECT_NAME,
    DistFilename,
    check_safe_filename,
    expected_sdist_filename,
    parse_filename,
    wheel_name_part,
)
from skypi.core.keys import provenance_key
from skypi.core.metadata import METADATA_VERSIONS, CoreMetadata, Limits, read_file_metadata

SEE_METADATA: Final = (
    "See https://packaging.python.org/specifications/core-metadata for more information."
)
_HEX: Final = {"md5_digest": 32, "sha256_digest": 64, "blake2_256_digest": 64}
_DIGEST_NAMES: Final = {
    "md5_digest": "MD5",
    "sha256_digest": "SHA256",
    "blake2_256_digest": "blake2b with digest size 32",
}
FORM_DIGESTS: Final = ("md5", "sha256", "blake2_256")  # what the upload form may carry
FILETYPES: Final = {"sdist": (".tar.gz", ".zip"), "bdist_wheel": (".whl",)}

Form = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class UploadRequest:
    """A form that passed every check that does not need the file's bytes."""

    project: NormalizedName
    name: str
    version: Version
    filetype: str
    digests: dict[str, str]  # field name -> lowercase hex, only those supplied
    # PEP 740 attestation objects (checked against the file once its digest is known)
    attestations: tuple[dict[str, Any], ...] = dataclasses.field(
        default=(), compare=False, hash=False
    )


def _one(form: Form, key: str) -> str:
    values = form.get(key) or [""]
    value = values[0].strip()
    return "" if value == "UNKNOWN" else value


def check_action(form: Form) -> None:
    action = _one(form, ":action")
    if action in {"submit", "submit_pkg_info", "doc_upload"}:
        raise Discontinued(
            "Project pre-registration and documentation uploads are not supported; "
            "upload your files instead."
        )
    if action != "file_upload":
        raise UploadRejected(
            f"Unknown or missing ':action' ({action!r}); this is an upload endpoint and "
            "expects ':action=file_upload' (twine upload, uv publish)."
        )


def validate_form(form: Form) -> UploadRequest:
    """Check the form fields in Warehouse's order; raise :class:`UploadRejected` on the first."""
    check_action(form)
    if _one(form, "protocol_version") not in {"", "1"}:
        raise UploadRejected("Unknown protocol version.")
    mv = _one(form, "metadata_version") or None
    if mv not in METADATA_VERSIONS:
        shown = repr(mv) if mv is not None else "None"
        raise UploadRejected(f"{shown} is not a valid metadata version. {SEE_METADATA}")
    name = _name(form)
    version = _version(form)
    filetype = _filetype(form)
    digests = _digests(form)
    _check_pyversion(_one(form, "pyversion"), filetype)
    if len(_one(form, "summary")) > 512:
        raise UploadRejected(f"'summary' field must be 512 characters or less. {SEE_METADATA}")
    attestations = [v for v in form.get("attestations", []) if v.strip()]
    if len(attestations) > 1:
        raise UploadRejected("Invalid attestations supplied during upload: send one field.")
    parsed = tuple(parse_attestations(attestations[0])) if attestations else ()
    return UploadRequest(canonicalize_name(name), name, version, filetype, digests, parsed)


def _name(form: Form) -> str:
    name = _one(form, "name")
    if not name:
        raise UploadRejected(
            f"'' is an invalid value for Name. Error: This field is required. {SEE_METADATA}"
        )
    if not VALID_PROJECT_NAME.match(name) or not name.isascii():  # no look-alikes (K for K)
        raise UploadRejected(
            f"{name!r} is an invalid value for Name. Error: Start and end with a letter or "
            f"numeral containing only ASCII numeric and '.', '_' and '-'. {SEE_METADATA}"
        )
    return name


def _version(form: Form) -> Version:
    version_text = _one(form, "version")
    if not version_text:
        raise UploadRejected(f"'version' is a required field. {SEE_METADATA}")
    try:
        return Version(version_text)
    except InvalidVersion as exc:
        raise UploadRejected(f"{version_text!r} is invalid for 'version'. {SEE_METADATA}") from exc


def _filetype(form: Form) -> str:
    filetype = _one(form, "filetype")
    if not filetype:
        raise UploadRejected("Invalid value for filetype. Error: This field is required.")
    if filetype not in FILETYPES:
        raise UploadRejected("Invalid value for filetype. Error: Use a known file type.")
    return filetype


def _digests(form: Form) -> dict[str, str]:
    """The digests the form gives, each checked for its length; at least one."""
    digests: dict[str, str] = {}
    for field, length in _HEX.items():
        value = _one(form, field).lower()
        if not value:
            continue
        if len(value) != length or not re.fullmatch(r"[0-9a-f]+", value):
            raise UploadRejected(
                f"Invalid value for {field}. Error: Use a valid, hex-encoded, "
                f"{_DIGEST_NAMES[field]} message digest."
            )
        digests[field] = value
    if not digests:
        raise UploadRejected("Error: Include at least one message digest.")
    return digests


def _check_pyversion(pyversion: str, filetype: str) -> None:
    if filetype == "bdist_wheel" and not pyversion:
        raise UploadRejected(
            "Invalid value for pyversion. Error: Python version is required for binary "
            "distribution uploads."
        )
    if filetype == "sdist" and pyversion not in {"", "source"}:
        raise UploadRejected(
            "Invalid value for pyversion. Error: Use 'source' as Python version for an sdist."
        )


def validate_filename(request: UploadRequest, filename: str) -> DistFilename:
    """PEP 527/625 and wheel-name rules for an uploaded file's name."""
    try:
        check_safe_filename(filename)
    except InvalidDistribution as exc:
        raise UploadRejected(str(exc)) from exc
    lowered = filename.lower()
    if not any(lowered.endswith(ext) for exts in FILETYPES.values() for ext in exts):
        raise UploadRejected(
            "Invalid file extension: Use .tar.gz, .whl or .zip extension. See "
            "https://www.python.org/dev/peps/pep-0527 and https://peps.python.org/pep-0715/ "
            "for more information"
        )
    if not any(filename.endswith(ext) for ext in FILETYPES[request.filetype]):
        ext = ".whl" if lowered.endswith(".whl") else "." + lowered.rsplit(".", 1)[-1]
        raise UploadRejected(
            f"Invalid file extension: Extension {ext} is invalid for filetype "
            f"{request.filetype}. See https://www.python.org/dev/peps/pep-0527 for more "
            "information."
        )
    project = request.project
    if request.filetype == "sdist":
        expected = expected_sdist_filename(project, request.version)
        try:
            dist = parse_filename(filename)
        except InvalidDistribution as exc:
            raise UploadRejected(f"Invalid source distribution filename: {filename}") from exc
        if dist.project != project:
            raise UploadRejected(f"Start filename for {request.name!r} with {project!r}.")
        if filename != expected:
            raise UploadRejected(f"Filename {filename!r} is invalid, should be {expected!r}.")
        return dist
    try:
        dist = parse_filename(filename)
    except InvalidDistribution as exc:
        raise UploadRejected(str(exc)) from exc
    if dist.project != project:
        raise UploadRejected(f"Start filename for {request.name!r} with {project!r}.")
    if dist.raw_name != wheel_name_part(project):
        raise UploadRejected(
            f"Filename {filename!r} should contain the normalized project name "
            f"{wheel_name_part(project)!r}, not {dist.raw_name!r}."
        )
    if dist.version != request.version:
        raise UploadRejected(
            f"Version in filename should be '{request.version}' not '{dist.version}'."
        )
    return dist


def check_digests(request: UploadRequest, computed: Mapping[str, str]) -> None:
    """Every digest the client supplied must match the bytes received."""
    for field, value in request.digests.items():
        if computed[field] != value:
            raise UploadRejected(
                "The digest supplied does not match a digest calculated from the uploaded file."
            )


def check_metadata(request: UploadRequest, dist: DistFilename, meta: CoreMetadata) -> None:
    """The file's own metadata must agree with the form (it is what the index will serve)."""
    if meta.project != request.project:
        raise UploadRejected(
            f"The file's metadata names project {meta.name!r}, but the upload is for "
            f"{request.name!r}."
        )
    if meta.version != request.version:
        raise UploadRejected(
            f"The file's metadata has version '{meta.version}', but the upload is for "
            f"'{request.version}'."
        )


def too_large(limit: int) -> UploadRejected:
    """The one refusal of a file over this index's upload limit (``limit`` bytes), whether its
    request declared its size or the bytes ran over while they arrived.

    >>> str(too_large(1024 * 1024))
    'File too large. Limit for this index is 1 MiB (skypi serve --max-upload-size).'
    """
    return UploadRejected(
        f"File too large. Limit for this index is {limit // (1024 * 1024)} MiB "
        "(skypi serve --max-upload-size)."
    )


def check_attestable(request: UploadRequest, claims: Mapping[str, str] | None) -> None:
    """PEP 740 attestations are taken only from a trusted publisher's upload, as on PyPI."""
    if request.attestations and claims is None:
        raise UploadRejected(
            "Invalid attestations supplied during upload: attestations are taken only "
            "from uploads with trusted publishing; re-run without them "
            "(uv publish --no-attestations)."
        )


@dataclass(frozen=True)
class Provenance:
    """A file's PEP 740 provenance: where it is stored, what it says, and the link to it from
    the file's entry."""

    key: str
    document: bytes
    href: str


@dataclass(frozen=True)
class Received:
    """An uploaded file's bytes, checked against its form: their SHA-256, size and core
    metadata, and the provenance to store beside them when the upload is attested."""

    sha256: str
    size: int
    meta: CoreMetadata
    provenance: Provenance | None = None


def receive(
    request: UploadRequest,
    dist: DistFilename,
    fh: IO[bytes],
    limit: int,
    limits: Limits,
    claims: Mapping[str, str] | None = None,
) -> Received:
    """Read the uploaded bytes (``limit`` bytes at most) and check them against the form: the
    digests it supplied, its attestations (a trusted publisher's upload only, each naming this
    very file) and the file's own metadata. Raises :class:`UploadRejected`. The attestations'
    signatures are the caller's to verify (sigstore is the API's)."""

    def within(size: int) -> None:
        if size > limit:
            raise too_large(limit)

    fh.seek(0)
    size, found = hash_stream(fh, FORM_DIGESTS, check=within)
    check_digests(request, {f"{name}_digest": value for name, value in found.items()})
    check_attestable(request, claims)
    attested = None
    if request.attestations and claims is not None:
        check_subjects(request.attestations, dist.filename, found["sha256"])
        attested = Provenance(
            provenance_key(dist.project, dist.filename),
            provenance(request.attestations, claims),
            provenance_href(dist.project, str(dist.version), dist.filename),
        )
    try:
        meta = read_file_metadata(dist, fh, size, limits)
    except InvalidDistribution as exc:
        raise UploadRejected(str(exc)) from exc
    check_metadata(request, dist, meta)
    return Received(found["sha256"], size, meta, attested)
