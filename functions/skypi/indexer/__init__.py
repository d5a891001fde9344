"""Apply "file landed" / "file gone" to the pages, with compare-and-swap."""

from skypi.indexer.service import Change, Gone, Indexer, Landed, Outcome

__all__ = ["Change", "Gone", "Indexer", "Landed", "Outcome"]
