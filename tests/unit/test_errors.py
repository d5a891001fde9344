"""The core's errors know nothing of HTTP; one table in api/ gives each its status."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest

import skypi.core
from skypi.api.errors import STATUS, error_response, status_of
from skypi.core import errors
from skypi.core.errors import AuthRequired, Conflict, DoesNotExist, SkypiError, UploadRejected
from skypi.core.reason import REASON_HEADER

CORE = Path(skypi.core.__file__).parent
API = CORE.parent / "api"
ERROR_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, ValueError) and cls.__module__ == errors.__name__
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_core_error_has_its_own_status(cls: type[SkypiError]) -> None:
    """A new error class must be given its status here, not answered 500 or inherit one."""
    assert cls in STATUS, f"add {cls.__name__} to skypi.api.errors.STATUS"
    assert 400 <= STATUS[cls] < 600
    assert status_of(cls("x")) == STATUS[cls]
    assert not hasattr(cls("x"), "status")  # the class says what happened, not how to answer


def test_a_subclass_elsewhere_takes_its_nearest_ancestors_status() -> None:
    class Gone(DoesNotExist):
        pass

    assert status_of(Gone("x")) == 404


def _status_numbers_raised(path: Path) -> list[str]:
    """Raise sites that pass an HTTP status: a ``status=`` keyword or a number from 100 to 599."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
            continue
        values = [*node.exc.args, *(k.value for k in node.exc.keywords)]
        numbers = [v for v in values if isinstance(v, ast.Constant) and type(v.value) is int]
        if any(100 <= n.value <= 599 for n in numbers) or any(
            k.arg == "status" for k in node.exc.keywords
        ):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_core_raises_no_http_statuses() -> None:
    assert [site for path in CORE.glob("*.py") for site in _status_numbers_raised(path)] == []
    # nor does the API: its errors are named too, and the table alone gives their statuses
    # (but the token exchange of Trusted Publishing, which answers in Warehouse's own shape:
    # an error code and a status for each refusal, as PyPI's clients read them)
    api = [path for path in API.glob("*.py") if path.name != "oidc.py"]
    assert [site for path in api for site in _status_numbers_raised(path)] == []
    tree = ast.parse(Path(errors.__file__).read_text())
    assert not [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and type(n.value) is int
    ]


def test_the_scan_finds_a_status_passed_at_a_raise_site(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("raise UploadRejected('gone', status=410)\nraise Refused('x', 409)\n")
    assert _status_numbers_raised(bad) == ["bad.py:1", "bad.py:2"]


def test_the_upload_endpoints_answer_in_text_with_the_reason_phrase() -> None:
    response = error_response(UploadRejected("File already exists.\nMore."), "/legacy/")
    assert response.status_code == 400
    assert response.body == b"File already exists.\nMore.\n"
    assert response.headers[REASON_HEADER] == "File already exists."


def test_the_json_api_answers_with_a_detail() -> None:
    response = error_response(Conflict("stored by another upload"), "/api/uploads/complete")
    assert response.status_code == 409
    assert json.loads(response.body) == {"detail": "stored by another upload"}
    assert response.headers[REASON_HEADER] == "stored by another upload"
    refused = error_response(AuthRequired("no token"), "/api/projects/foo/yank")
    assert refused.status_code == 401
    assert json.loads(refused.body) == {"detail": "no token"}
    assert "www-authenticate" in refused.headers
