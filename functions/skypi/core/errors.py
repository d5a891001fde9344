"""Errors the core raises, named by what went wrong. Each message says what the user should do.

They are plain ``ValueError`` subclasses with no notion of HTTP: how an error is answered (its
status) is decided once, by its class, in ``skypi.api.errors``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class SkypiError(ValueError):
    """Base class: what stopped a request, with a message that says what to do. Not every one
    is the caller's to fix: :class:`Conflict`, :class:`Busy` and :class:`EdgeUnavailable` are
    passing states of the index (sending the request again may succeed), :class:`ReadOnly`
    and :class:`NotSupported` what this index is (the caller can only go around it), and
    :class:`CorruptDocument` the index's own damage (an operator's ``skypi reindex``). The
    others (a refused file, a malformed request, a missing grant) are the caller's."""


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


class AuthFailure(SkypiError):
    """The credentials sent do not allow this request (a token revoked, expired or without the
    scope or the project, a wrong password)."""


class AuthRequired(AuthFailure):
    """No usable credentials were sent: the answer asks for them (a client then tries its
    keyring, or asks its user)."""


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


class CorruptDocument(SkypiError):
    """A stored document (a project page, the root listing, the landing page's manifest, a
    release's description) that cannot be read: edited by hand, or damaged. The index never
    crashes on one; ``skypi reindex`` writes it again."""


# What a stored JSON document of the wrong shape raises: a missing field (KeyError, IndexError),
# a list where an object belongs (TypeError, AttributeError), a size of 1e999 (OverflowError),
# brackets nested 100,000 deep (RecursionError), not JSON at all (ValueError).
_MALFORMED = (
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    OverflowError,
    RecursionError,
)


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Read a stored document: whatever its malformed bytes raise becomes one
    :class:`CorruptDocument` naming ``what``."""
    try:
        yield
    except CorruptDocument:
        raise
    except _MALFORMED as exc:
        raise CorruptDocument(
            f"{what} cannot be read ({type(exc).__name__}: {exc}); "
            "run `skypi reindex` to write it again"
        ) from exc
