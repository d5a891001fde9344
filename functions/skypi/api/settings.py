"""What an index operator can turn on and off."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    private: bool = False  # reads need a token with the read scope
    upload_auth: bool = True  # uploads and admin need a token (off only with `-a .`)
    max_upload_size: int = 1024**3
    health_path: str = "/health"
