"""Errors the core raises, named by what went wrong. Each message says what the user should do.

They are plain ``ValueError`` subclasses with no notion of HTTP: how an error is answered (its
status) is decided once, by its class, in ``skypi.api.errors``.
"""

from __future__ import annotations


class SkypiError(ValueError):
    """Base class: a request that the caller can fix."""


class InvalidDistribution(SkypiError):
    """The file is not a distribution skypi can index (bad filename, archive or metadata)."""


class UploadRejected(SkypiError):
    """An upload that PyPI's rules refuse; the message is what twine and uv show."""


class InvalidRequest(SkypiError):
    """An admin request that cannot be carried out as given (a malformed or missing field)."""


class DoesNotExist(SkypiError):
    """What the request names is not there (a project, a file, an upload in progress)."""


class Conflict(SkypiError):
    """Another write got there first; nothing was published, and trying again may succeed."""


class Reserved(SkypiError):
    """The project's name is in a namespace (PEP 752) the caller holds no grant for."""


class ReadOnly(SkypiError):
    """This index takes no writes (its folder is read-only)."""


class Discontinued(SkypiError):
    """A request of the upload protocol that PyPI no longer supports, so neither does skypi."""


class NotSupported(SkypiError):
    """This index cannot do that where it stores its files (a feature of another storage)."""


class LengthRequired(SkypiError):
    """The request does not say how long its body is, and this endpoint must know first."""


class RequestTooLarge(SkypiError):
    """The request is bigger than this endpoint takes, whatever the index's own file limit."""


class Busy(SkypiError):
    """Too many writers at once for one page: nothing is lost, and trying again in a moment
    succeeds (what is stored is listed by then, or by its storage event)."""


class EdgeUnavailable(SkypiError):
    """The CloudFront edge (its KeyValueStore) did not take a change (after retries): what was
    done leaves nothing unsafe, and sending the request again finishes it."""
