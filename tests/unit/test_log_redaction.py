"""Every log line of the local servers is redacted (tokens, random-looking secrets) and still
formats: uvicorn's access formatter reads the record's arguments, not only its message."""

from __future__ import annotations

import io
import logging
import logging.config
from collections.abc import Iterator

import pytest
from uvicorn.config import LOGGING_CONFIG

from skypi.core.tokens import new_token
from skypi.local.serve import RedactSecrets, redact_logs

SECRET = new_token()
PASTED = "ghp_" + "Ab1" * 12


@pytest.fixture
def uvicorn_logs() -> Iterator[io.StringIO]:
    """uvicorn's own logging configuration (as ``--log-level debug`` runs it), redacted,
    its handlers writing into one buffer."""
    saved = {n: logging.getLogger(n).handlers[:] for n in ("uvicorn", "uvicorn.access")}
    logging.config.dictConfig(LOGGING_CONFIG)
    redact_logs()
    out = io.StringIO()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.DEBUG)
        for handler in logging.getLogger(name).handlers:
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(out)
    yield out
    for name, handlers in saved.items():
        logging.getLogger(name).handlers = handlers


def test_access_lines_with_a_token_in_the_url_are_redacted_and_formatted(
    uvicorn_logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    access = logging.getLogger("uvicorn.access")
    for path in (f"/simple/?token={SECRET}", f"/simple/{PASTED}/", "/simple/demo/"):
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 200)
    logging.getLogger("uvicorn.error").debug("token %s and %r", SECRET, {"k": PASTED})
    logging.getLogger("uvicorn.error").info("%(user)s logged in", {"user": SECRET})
    text = uvicorn_logs.getvalue()
    assert "Logging error" not in capsys.readouterr().err
    assert '"GET /simple/?token=skypi_… HTTP/1.1" 200' in text
    assert '"GET /simple/demo/ HTTP/1.1" 200' in text
    assert "characters redacted" in text
    assert "skypi_… logged in" in text
    assert len(text.splitlines()) == 5
    assert SECRET not in text
    assert SECRET[6:20] not in text
    assert PASTED not in text


def test_a_redacted_record_is_left_as_is_by_a_second_filter() -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "GET %s", (f"/?t={SECRET}",), None)
    for _ in range(2):
        assert RedactSecrets().filter(record)
    assert record.getMessage() == "GET /?t=skypi_…"
