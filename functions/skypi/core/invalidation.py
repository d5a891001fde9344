"""Which paths drop a deleted or restored file from CloudFront's caches, in batches CloudFront
accepts.

Files are cached at the edge for a year, so a file deleted (or the bytes an overwrite briefly
put in place of a restored original) would go on being served without an invalidation.

*What to name.* The edge function sets every read's URI to one spelling per key
(:func:`skypi.core.edge.origin_uri`) before CloudFront looks in its cache, so that spelling is
the cache key, and one exact path per key invalidates it, with no wildcard: the file's, and
its ``.metadata``'s. The viewer's own spelling never becomes a cache key: the function
answers itself (uncached) or rewrites the URI (docs/deploy.md, with AWS's rules).

*How many at once* (CloudFront's quotas, docs/deploy.md): at most 3,000 file paths in progress
per distribution, which is also the most one request can carry, and, independently, at most
15 wildcard paths in progress. :func:`plan` splits paths into batches that each fit on their
own; CloudFront refuses one that does not fit beside those still in progress
(``TooManyInvalidationsInProgress``), and the caller keeps it to send again later.

>>> [b.paths for b in plan(invalidation_paths(["packages/foo/foo-1.0+cpu.tar.gz"]))]
[('/packages/foo/foo-1.0%2Bcpu.tar.gz', '/packages/foo/foo-1.0%2Bcpu.tar.gz.metadata')]
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from skypi.core.edge import decide, origin_uri
from skypi.core.keys import VIEWS_PREFIX
from skypi.core.pages import metadata_key
from skypi.core.viewedge import decide_view, from_origin_uri, view_origin_key

# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/InvalidationLimits.html
MAX_FILE_PATHS_IN_PROGRESS: Final = 3_000  # per distribution; one request may carry them all
MAX_WILDCARD_PATHS_IN_PROGRESS: Final = 15  # independent of the file paths
MAX_PATHS_PER_REQUEST: Final = MAX_FILE_PATHS_IN_PROGRESS
# A batch kept for later is one SQS message: at most 262,144 bytes by default
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html).
MAX_MESSAGE_BYTES: Final = 262_144
WILDCARD: Final = "*"
_METADATA: Final = metadata_key("")
# Printable ASCII without RFC 1738's unsafe characters (space < > " # { } | \\ ^ ~ [ ] `),
# which an invalidation path must percent-encode, and with well-formed escapes.
_PATH: Final = re.compile(r"/(?:[!$&-;=?-Z_a-z]|%[0-9A-F]{2})*")


def is_wildcard(path: str) -> bool:
    return path.endswith(WILDCARD)


def invalidation_paths(keys: Iterable[str]) -> list[str]:
    """The exact paths that drop ``keys`` and their ``.metadata`` from the edge caches, in
    order, each once.

    >>> invalidation_paths(["packages/foo/foo-1.0.tar.gz"])
    ['/packages/foo/foo-1.0.tar.gz', '/packages/foo/foo-1.0.tar.gz.metadata']
    """
    paths: dict[str, None] = {}
    for key in filter(cached_at_the_edge, keys):
        paths[origin_uri(key)] = None
        if not key.endswith(_METADATA):
            paths[origin_uri(metadata_key(key))] = None
    return list(paths)


def cached_at_the_edge(key: str) -> bool:
    """Whether the edge ever reads ``key`` from the bucket (and CloudFront may cache it): a
    read of its URI is answered with it. A key with a dot segment, say, is never served, and
    its path is one CloudFront could refuse, taking a whole batch with it.

    >>> cached_at_the_edge("packages/a/a-1.0.tar.gz"), cached_at_the_edge("packages/../a.zip")
    (True, False)

    A view's cached file is read by the view's own edge rules, under ``/views/`` (its pages
    are revalidated, never held):

    >>> cached_at_the_edge("views/safe/files/a/a-1.0.tar.gz"), cached_at_the_edge("views/x")
    (True, False)
    """
    uri = origin_uri(key)
    if key.startswith(VIEWS_PREFIX):
        viewer = from_origin_uri(uri)
        if viewer is None:
            return False
        found = decide_view("GET", viewer.path, "", viewer.accept, viewer.accept_encoding)
        return found.kind == "file" and view_origin_key(found) == key
    return decide("GET", uri, "").key == key


def check_path(path: str) -> str:
    """``path`` if CloudFront takes it as an invalidation path, else ValueError: it begins
    with ``/``, is ASCII with the unsafe characters percent-encoded (uppercase escapes, as
    :func:`~skypi.core.edge.origin_uri` writes them), and has ``*`` only at its end.

    >>> check_path("/packages/a%2Bb"), check_path("/packages/*")
    ('/packages/a%2Bb', '/packages/*')
    """
    if not _PATH.fullmatch(path):
        raise ValueError(f"not an invalidation path: {path!r}")
    if WILDCARD in path[:-1]:
        raise ValueError(f"a wildcard may only end an invalidation path: {path!r}")
    return path


@dataclass(frozen=True)
class Batch:
    """One CreateInvalidation request. ``reference`` is its CallerReference, kept when the
    batch is sent again, so CloudFront makes one invalidation of it however often it is sent."""

    paths: tuple[str, ...]
    reference: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        for path in self.paths:
            check_path(path)
        if not self.paths or len(set(self.paths)) != len(self.paths):
            raise ValueError("an invalidation names one or more paths, each once")
        if len(self.paths) > MAX_PATHS_PER_REQUEST:
            raise ValueError(f"at most {MAX_PATHS_PER_REQUEST:,} paths in one invalidation")
        if self.wildcards > MAX_WILDCARD_PATHS_IN_PROGRESS:
            raise ValueError(
                f"at most {MAX_WILDCARD_PATHS_IN_PROGRESS} wildcard paths can be in progress"
            )
        if not self.reference or len(self.reference) > 128 or not self.reference.isalnum():
            raise ValueError("a caller reference is 1 to 128 letters and digits")

    @property
    def wildcards(self) -> int:
        return sum(1 for p in self.paths if is_wildcard(p))

    @property
    def files(self) -> int:
        return len(self.paths) - self.wildcards

    def to_message(self) -> str:
        """The batch as a queue message (:meth:`from_message` reads it back)."""
        return json.dumps({"paths": list(self.paths), "reference": self.reference})

    @classmethod
    def from_message(cls, body: str) -> Batch:
        """A batch from a queue message; ValueError when the message is not one.

        >>> Batch.from_message(Batch(("/packages/a",), "r1").to_message())
        Batch(paths=('/packages/a',), reference='r1')
        """
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or set(data) != {"paths", "reference"}:
            raise ValueError("expected an object with 'paths' and 'reference'")
        paths, reference = data["paths"], data["reference"]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise ValueError("'paths' must be a list of strings")
        if not isinstance(reference, str):
            raise ValueError("'reference' must be a string")
        return cls(tuple(paths), reference)


def as_messages(batch: Batch, max_bytes: int = MAX_MESSAGE_BYTES) -> list[Batch]:
    """``batch`` as batches whose messages fit ``max_bytes``: itself when it fits, else its
    paths halved until each half does (3,000 long filenames do not fit one message).

    >>> [len(b.paths) for b in as_messages(Batch(tuple(f"/{i:0100}" for i in range(8))), 500)]
    [4, 4]
    """
    if len(batch.to_message().encode()) <= max_bytes:
        return [batch]
    if len(batch.paths) == 1:
        raise ValueError(f"one invalidation path longer than a message: {batch.paths[0][:80]}")
    half = len(batch.paths) // 2
    return [
        *as_messages(Batch(batch.paths[:half]), max_bytes),
        *as_messages(Batch(batch.paths[half:]), max_bytes),
    ]


def plan(paths: Iterable[str]) -> list[Batch]:
    """``paths`` (each once, in order) in as few batches as CloudFront's limits allow: each
    batch at most 3,000 paths of which at most 15 wildcards, so that each fits alone.

    >>> [(b.files, b.wildcards) for b in plan([f"/p/{i}" for i in range(3001)] + ["/w*"])]
    [(3000, 0), (1, 1)]
    """
    batches: list[Batch] = []
    current: list[str] = []
    wildcards = 0
    for path in dict.fromkeys(check_path(p) for p in paths):
        wild = is_wildcard(path)
        if len(current) == MAX_PATHS_PER_REQUEST or (
            wild and wildcards == MAX_WILDCARD_PATHS_IN_PROGRESS
        ):
            batches.append(Batch(tuple(current)))
            current, wildcards = [], 0
        current.append(path)
        wildcards += wild
    if current:
        batches.append(Batch(tuple(current)))
    return batches
