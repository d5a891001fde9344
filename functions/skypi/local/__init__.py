"""`skypi serve`: the whole index in one process over a folder."""
