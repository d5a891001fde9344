"""The object-store port and its adapters."""

from skypi.store.base import NotFound, ObjectInfo, PreconditionFailed, Store

__all__ = ["NotFound", "ObjectInfo", "PreconditionFailed", "Store"]
