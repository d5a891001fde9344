"""The few values that the CDK app (``infra/``) shares with the functions it deploys.

The stack is synthesized from these at deploy time: the S3 notification filters, the edge
function's upload ceiling, the name of the tracing switch (the storage key layout, from which the
grants are derived, is ``skypi.core.keys``). This module imports nothing, so
``infra`` depends on plain values and never on the code it packages (the layers contract in
``.importlinter`` holds it to that).
"""

from __future__ import annotations

from typing import Final

# Extensions an existing folder may hold. Uploads take only .whl and .tar.gz (PEP 527/625): the
# upload form's filetype allows a .zip sdist, whose name is then refused.
SDIST_EXTENSIONS: Final = (".tar.gz", ".zip", ".tar.bz2", ".tgz")
# What an S3 notification filter selects: distributions, and not the indexer's own ``.metadata``.
DISTRIBUTION_SUFFIXES: Final = (".whl", *SDIST_EXTENSIONS)
MAX_LAMBDA_REQUEST_BYTES: Final = 4_700_000  # the largest upload request the API accepts
# Where a request goes, by its raw path: the one table of both edges. skypi.core.edge.route reads
# it; the CloudFront function's arrays are filled from it at synth (infra/cdn.py), and the
# READ_PREFIXES are the bucket's cache behaviours. The health path is the API's (``skypi serve
# --health-endpoint`` moves it locally); ``/`` takes pypiserver's uploads, so it is the API's
# for POST and a read (the landing page) otherwise. ``/project/`` holds the pages for people.
HEALTH_PATH: Final = "/health"
API_PATHS: Final = frozenset({"/legacy", "/legacy/"})
API_PREFIXES: Final = ("/api/", "/_/oidc/", "/integrity/")  # Trusted Publishing, PEP 740
API_POSTS: Final = frozenset({"/"})
READ_PATHS: Final = frozenset({"/simple", "/"})
READ_PREFIXES: Final = ("/simple/", "/packages/", "/project/")
TRACING_VARIABLE: Final = "SKYPI_TRACING"  # set by `-c skypi:traceCalls=true`: X-Ray on

# The environment variable that gives the functions this index's address (https://<domain>):
# set by the CDK app, written into the setup lines of the pages for people.
INDEX_URL_VARIABLE: Final = "SKYPI_INDEX_URL"

# Views over an upstream index (``/view/<name>/simple/...``): read by the local read path; on
# AWS their own CloudFront behaviour (docs/views.md).
VIEW_PREFIX: Final = "/view/"

# The root listing (``/simple/``) on AWS: a project that appears, leaves or changes its summary
# is recorded as pending, and one rebuild per window merges every pending project into the
# listing, this many seconds after the first (SQS's DelaySeconds: 0 to 900). Its page is
# served at once; only the listing waits (docs/aws-runtime.md).
ROOT_DELAY_VARIABLE: Final = "SKYPI_ROOT_DELAY_SECONDS"
DEFAULT_ROOT_DELAY_SECONDS: Final = 30
MAX_ROOT_DELAY_SECONDS: Final = 900
# The queue the rebuild is asked on: the indexer's own (its URL, in both functions' environment).
ROOT_QUEUE_VARIABLE: Final = "SKYPI_INDEX_QUEUE_URL"
# The body of that message (no S3 notification looks like it: they carry "Records" or "Event").
ROOT_REBUILD_MESSAGE: Final = '{"skypi":"rebuild-root"}'
