"""What an index's refusal says, however it was framed."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx


def detail(response: httpx.Response) -> str:
    """The ``detail`` of a JSON refusal (FastAPI's validation errors joined), else the body.

    >>> detail(httpx.Response(404, json={"detail": "No file 'x' in 'foo'."}))
    "No file 'x' in 'foo'."
    >>> detail(httpx.Response(422, json={"detail": [{"msg": "Field required"}]}))
    'Field required'
    >>> detail(httpx.Response(400, text="File already exists.\\n"))
    'File already exists.'
    """
    found: Any = response.text
    with contextlib.suppress(ValueError, AttributeError):
        found = response.json().get("detail", found)
    if isinstance(found, list):
        found = "; ".join(str(d.get("msg", d) if isinstance(d, dict) else d) for d in found)
    return str(found).strip()
