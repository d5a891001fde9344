"""A cache held within a count and a size: what the page writer keeps of pages and release
descriptions it read or wrote, so a busy project is not parsed again on every upload, and a
process serving many projects does not grow with them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """At most ``count`` values and ``size`` bytes of them (each value's bytes as ``size_of``
    says), the oldest kept dropped first; a value larger than ``largest`` is not kept (it is
    read again when needed: one request, not a share of the memory). Thread-safe.

    >>> kept = Bounded[str, bytes](count=2, size=10, size_of=len)
    >>> kept.put("a", b"1234"); kept.put("b", b"1234"); kept.put("c", b"1234")
    >>> kept.get("a"), kept.get("c"), kept.bytes
    (None, b'1234', 8)
    >>> kept.put("b", b"x" * 11); kept.get("b"), kept.bytes  # too large: the old one goes too
    (None, 4)
    """

    def __init__(
        self, count: int, size: int, size_of: Callable[[V], int], largest: int | None = None
    ) -> None:
        self.count, self.size, self.size_of = count, size, size_of
        self.largest = size if largest is None else largest
        self._values: dict[K, V] = {}
        self.bytes = 0  # the kept values' size
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._values.get(key)

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` as the newest, in place of what ``key`` held."""
        size = self.size_of(value)
        with self._lock:
            old = self._values.pop(key, None)
            self.bytes -= self.size_of(old) if old is not None else 0
            if size > self.largest:
                return
            while self._values and (
                len(self._values) >= self.count or self.bytes + size > self.size
            ):
                dropped = self._values.pop(next(iter(self._values)))
                self.bytes -= self.size_of(dropped)
            self._values[key] = value
            self.bytes += size


__all__ = ["Bounded"]
