"""Errors the core raises. Each one says what the user should do."""

from __future__ import annotations


class SkypiError(ValueError):
    """Base class: bad input that the caller can fix. ``status`` is the HTTP status to answer."""

    status: int = 400


class InvalidDistribution(SkypiError):
    """The file is not a distribution skypi can index (bad filename, archive or metadata)."""


class UploadRejected(SkypiError):
    """An upload that PyPI's rules refuse; the message is what twine and uv show."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
