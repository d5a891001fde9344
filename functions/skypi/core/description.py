"""A release's long description, rendered as PyPI renders it (``readme-renderer``, which
sanitizes with ``nh3``): once, when the release's first file is indexed, and stored beside its
page (:func:`skypi.core.keys.release_key`); upload HTML is never passed through.

Whatever a hostile description does (a renderer raising, nesting that makes the sanitizer
quadratic, reST that docutils takes seconds over), it is shown as plain text, within a bound
of size and time. ``readme_renderer`` costs about 0.2 s to import, so it is imported only when
a description is rendered.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from html import escape
from typing import Any, Final

# Longer reST descriptions are shown as plain text: docutils takes seconds on a few hundred
# kilobytes of lists, and the indexer must not spend them on one hostile upload (Markdown's
# renderer, cmark, is linear and fast).
MAX_RST_CHARS: Final = 64 * 1024
# The sanitizer's cost grows with the square of the nesting depth (100,000 nested quotes took
# minutes); real READMEs nest a handful of levels.
MAX_MARKDOWN_CHARS: Final = 512 * 1024
MAX_DEPTH: Final = 64
# What one description may cost: docutils is pure Python, and some reST (a grid table thousands
# of columns wide: 25 s for 18 KB) is far slower than its length suggests. The slowest real
# READMEs take under 2 s on a loaded machine; past this, the description is shown as plain text.
RENDER_SECONDS: Final = 5.0
_TAG: Final = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*?(/?)>")
_VOID: Final = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
    | {"track", "wbr"}
)


def _depth(html: str) -> int:
    """The deepest element nesting in ``html``, counting every unclosed tag as open.

    >>> _depth("<p><em>a</em><br></p><ul><li><ul><li>b</li></ul></li></ul>")
    4
    """
    depth = deepest = 0
    for match in _TAG.finditer(html):
        closing, name, self_closing = match.groups()
        if name.lower() in _VOID or self_closing:
            continue
        depth = max(0, depth - 1) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


class _OutOfTime(BaseException):
    """Raised inside a renderer that ran past its time (a BaseException, so that no
    ``except Exception`` inside docutils swallows it)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Stop the Python code run inside (in this thread) once ``seconds`` have passed: the
    clock is looked at every 256 function calls, through a profile hook."""
    end = time.monotonic() + seconds
    calls = 0

    def check(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1
            if calls % 256 == 0 and time.monotonic() > end:
                raise _OutOfTime

    previous = sys.getprofile()
    sys.setprofile(check)
    try:
        yield
    finally:
        sys.setprofile(previous)


def render_description(
    text: str, content_type: str | None, problems: list[str] | None = None
) -> str:
    """The long description as PyPI shows it: what warehouse's ``readme.render`` does.

    reST is the default; an unknown type is plain text; reST that fails to render falls back to
    plain text. Every renderer's output is sanitized by ``nh3`` inside ``readme_renderer``.
    Whatever a hostile description does (a renderer raising, or running past
    ``RENDER_SECONDS``), it is shown as plain text, and why is added to ``problems``: a
    description never stops a page from being written.

    >>> render_description("<script>x</script>", "text/markdown")
    '&lt;script&gt;x&lt;/script&gt;\\n'
    >>> render_description("*x*", "text/markdown;\\n variant=GFM")  # a folded header
    '<p><em>x</em></p>\\n'
    """
    try:
        with _deadline(RENDER_SECONDS):
            return _render(text, content_type)
    except (Exception, _OutOfTime) as exc:
        why = (
            f"rendering took more than {RENDER_SECONDS:g} s"
            if isinstance(exc, _OutOfTime)
            else f"{type(exc).__name__}: {str(exc)[:200]}"
        )
        if problems is not None:
            problems.append(f"description shown as plain text ({why})")
        return _plain(text)


def _plain(text: str) -> str:
    """The description as escaped plain text (code points UTF-8 cannot hold replaced)."""
    import readme_renderer.txt

    text = text.encode("utf-8", "replace").decode("utf-8")
    try:
        return str(readme_renderer.txt.render(text) or "")
    except Exception:  # the sanitizer itself: plain escaping cannot fail
        return f"<pre>{escape(text)}</pre>"


def _render(text: str, content_type: str | None) -> str:
    import readme_renderer.markdown
    import readme_renderer.rst
    import readme_renderer.txt

    message = EmailMessage()
    # a folded Description-Content-Type header keeps its line break: unfold it
    message["content-type"] = " ".join((content_type or "text/x-rst").split())
    kind = message.get_content_type()
    params = {k: v for k, v in message["content-type"].params.items() if k != "charset"}
    renderer: Any = {
        "text/x-rst": readme_renderer.rst,
        "text/markdown": readme_renderer.markdown,
    }.get(kind, readme_renderer.txt)
    if renderer is readme_renderer.rst and len(text) > MAX_RST_CHARS:
        renderer, params = readme_renderer.txt, {}
    if renderer is readme_renderer.markdown:
        to_html = readme_renderer.markdown.variants.get(params.get("variant", "GFM"))
        if len(text) > MAX_MARKDOWN_CHARS or (
            to_html is not None and _depth(to_html(text)) > MAX_DEPTH
        ):
            renderer, params = readme_renderer.txt, {}
    try:
        rendered = renderer.render(text, **params)
    except TypeError:  # a parameter the renderer does not take (PyPI refuses these uploads)
        rendered = renderer.render(text)
    if rendered is None:
        rendered = readme_renderer.txt.render(text)
    return str(rendered or "")


__all__ = ["MAX_RST_CHARS", "RENDER_SECONDS", "render_description"]
