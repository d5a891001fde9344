"""The CDN in front of the bucket: tell it to forget files that were deleted or restored.

Files are cached at the edge for a year (``immutable``), so a deleted file, or the bytes an
overwrite briefly put in place of a restored original, would go on being served without an
invalidation. One path per file, ending in ``*``, covers the file and its ``.metadata``;
CloudFront bills a wildcard path as one path (the first 1,000 a month are free). Paths are
sent both as stored and percent-encoded the way the pages link them (``+`` → ``%2B``),
because CloudFront matches an invalidation against the URI the viewer asked for.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, cast
from urllib.parse import quote

from botocore.exceptions import BotoCoreError, ClientError

from skypi.store.aws import create_client

if TYPE_CHECKING:
    from mypy_boto3_cloudfront import CloudFrontClient

log = logging.getLogger("skypi.cdn")


class Cdn(Protocol):
    """Something that caches the store's objects and can be told to drop some."""

    def invalidate(self, keys: Iterable[str]) -> None: ...


def invalidation_paths(keys: Iterable[str]) -> list[str]:
    """The paths that drop ``keys`` (and their ``.metadata``) from the edge caches.

    >>> invalidation_paths(["packages/foo/foo-1.0+cpu-py3-none-any.whl"])
    ['/packages/foo/foo-1.0+cpu-py3-none-any.whl*', '/packages/foo/foo-1.0%2Bcpu-py3-none-any.whl*']
    >>> invalidation_paths(["packages/foo/foo-1.0.tar.gz"])
    ['/packages/foo/foo-1.0.tar.gz*']
    """
    paths: dict[str, None] = {}
    for key in keys:
        paths[f"/{key}*"] = None
        paths["/" + "/".join(quote(part, safe="") for part in key.split("/")) + "*"] = None
    return list(paths)


class CloudFrontCdn:
    """CreateInvalidation on one distribution (the API and indexer may do nothing else)."""

    def __init__(self, distribution_id: str, client: CloudFrontClient | None = None) -> None:
        self.distribution_id = distribution_id
        self._client = client

    @classmethod
    def from_environment(cls) -> CloudFrontCdn | None:
        """The distribution the stack names in ``SKYPI_DISTRIBUTION_ID``; none locally."""
        distribution = os.environ.get("SKYPI_DISTRIBUTION_ID")
        return cls(distribution) if distribution else None

    @property
    def client(self) -> CloudFrontClient:
        if self._client is None:
            self._client = cast("CloudFrontClient", create_client("cloudfront"))
        return self._client

    def invalidate(self, keys: Iterable[str]) -> None:
        paths = invalidation_paths(keys)
        if not paths:
            return
        try:
            self.client.create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": paths},
                    "CallerReference": uuid.uuid4().hex,
                },
            )
        except (BotoCoreError, ClientError):
            # The page is already right; a stale edge copy is the lesser harm than failing
            # (and retrying) an index update that succeeded. Say how to finish by hand.
            log.exception(
                "could not invalidate %s at the CDN: run aws cloudfront create-invalidation "
                "--distribution-id %s --paths %s",
                paths,
                self.distribution_id,
                " ".join(paths),
            )
            return
        log.info("invalidated %s at the CDN", paths)
