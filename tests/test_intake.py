"""The intake's own refusals, on a folder: what the upload API's routes never reach."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from skypi.core.errors import UploadRejected
from skypi.core.upload import validate_filename, validate_form
from skypi.indexer.intake import Intake
from skypi.indexer.service import Indexer
from skypi.store.local import LocalStore
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.oidc import make_attestation

CLAIMS = {"iss": "https://token.actions.githubusercontent.com", "repository": "acme/demo"}


def test_an_attested_upload_to_an_intake_that_cannot_verify_it_is_refused_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """Attestations whose statement names this very file are still refused where no verifier
    of their signatures is given: nothing is stored, no page is written."""
    store = LocalStore(tmp_path / "packages")
    data, filename = wheel_bytes("demo", "1.0"), wheel_name("demo", "1.0")
    attestation = make_attestation(filename, hashlib.sha256(data).hexdigest())
    form = {k: [v] for k, v in upload_form(data, filename, "demo", "1.0").items()}
    form["attestations"] = [json.dumps([attestation])]
    request = validate_form(form)
    with pytest.raises(UploadRejected, match="cannot verify attestations"):
        Intake(Indexer(store)).upload(
            request, validate_filename(request, filename), io.BytesIO(data), 1 << 20, CLAIMS
        )
    assert list(store.list("")) == []
