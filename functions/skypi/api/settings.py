"""What an index operator can turn on and off."""

from __future__ import annotations

from dataclasses import dataclass

from skypi.core.constants import DEFAULT_ROOT_DELAY_SECONDS, HEALTH_PATH


@dataclass(frozen=True)
class Settings:
    private: bool = False  # reads need a token with the read scope
    upload_auth: bool = True  # uploads and admin need a token (off only with `-a .`)
    max_upload_size: int = 1024**3
    health_path: str = HEALTH_PATH
    # Behind API Gateway and Lambda: a whole upload request above this many bytes never reaches
    # the function, so it is refused up front, naming the paths that do take big files.
    max_request_size: int | None = None
    large_upload_hint: str = ""
    # Behind API Gateway and Lambda (6 MB response cap): objects larger than this are answered
    # with a redirect to a short-lived presigned URL when the store can make one.
    redirect_over: int | None = None
    presigned_ttl: int = 300
    # `skypi publish`: files go straight to storage, so the limit is the store's, not ours.
    max_direct_upload_size: int = 50 * 1024**3
    # Behind API Gateway (30 s per request): how long completing a direct upload may spend
    # hashing it; a bigger file is left to the indexer, which has more time.
    direct_hash_seconds: float | None = None
    # Trusted Publishing: the `aud` a CI's OIDC token must carry. Unique per index, so a token
    # issued for another index that trusts the same repository is refused here.
    oidc_audience: str = "skypi"
    # This index's address, as its users reach it: put into the setup lines of the pages for
    # people as they are served (None: the pages' script writes it from where they loaded).
    index_url: str | None = None
    # Whether ``index_url`` is also written into those pages when they are rendered: for an
    # address that does not change (the deployed stack's), so that CloudFront serves them
    # complete. A local server's address changes with its port, so it only fills them in.
    address_in_pages: bool = False
    # Where a rebuild of the root listing is asked for later (AWS): how many seconds later. A
    # new project is installable at once; ``/simple/`` lists it within this delay.
    root_delay: int = DEFAULT_ROOT_DELAY_SECONDS
