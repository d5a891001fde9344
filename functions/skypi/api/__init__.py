"""The HTTP surface: reads, the upload API, admin, health (FastAPI + a thin ASGI read path)."""
