"""The reason phrase of an error, for clients that show only the status line.

twine (without ``--verbose``) prints the status line of a refused upload and nothing of the
body, so PyPI puts the reason in the status line ("400 File already exists"). ASGI has no field
for a reason phrase: the app sends it in :data:`REASON_HEADER`, and the local server writes it
into the status line (:mod:`skypi.local.reasons`). Where that cannot be done (API Gateway), the
header is harmless and twine prints its own "Retry with the --verbose option" hint.
"""

from __future__ import annotations

import re
from typing import Final

REASON_HEADER: Final = "x-skypi-reason"
MAX_REASON: Final = 300
_UNSAFE: Final = re.compile(r"[^\x20-\x7e]+")


def reason_phrase(message: str) -> str:
    """A status-line-safe phrase: the message's first line, printable ASCII, bounded.

    >>> reason_phrase("File already exists.\\nSee https://x for more.")
    'File already exists.'
    >>> reason_phrase("caf\\u00e9\\r\\nInjected: yes")
    'caf?'
    """
    first = message.strip().splitlines()[0] if message.strip() else ""
    return _UNSAFE.sub("?", first).strip()[:MAX_REASON]
