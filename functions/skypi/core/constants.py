"""The few values that the CDK app (``infra/``) shares with the functions it deploys.

The stack is synthesized from these at deploy time: the S3 notification filters, the edge
function's upload ceiling, the name of the tracing switch. This module imports nothing, so
``infra`` depends on plain values and never on the code it packages (the layers contract in
``.importlinter`` holds it to that).
"""

from __future__ import annotations

from typing import Final

PACKAGES_PREFIX: Final = "packages/"  # where distributions are stored, one folder per project
# Extensions an existing folder may hold; uploads accept only .whl and .tar.gz (PEP 527/625).
SDIST_EXTENSIONS: Final = (".tar.gz", ".zip", ".tar.bz2", ".tgz")
# What an S3 notification filter selects: distributions, and not the indexer's own ``.metadata``.
DISTRIBUTION_SUFFIXES: Final = (".whl", *SDIST_EXTENSIONS)
MAX_LAMBDA_REQUEST_BYTES: Final = 4_700_000  # the largest upload request the API accepts
TRACING_VARIABLE: Final = "SKYPI_TRACING"  # set by `-c skypi:traceCalls=true`: X-Ray on
