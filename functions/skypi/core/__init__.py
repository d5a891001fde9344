"""The pure core: names, filenames, metadata, pages, rendering, negotiation. No I/O here."""
