"""No archive can crash the metadata reader: whatever zipfile, tarfile, gzip or the email
parser raise on hand-made bytes becomes one refusal (InvalidDistribution) with a reason, and
a storage fault under the reader is not mistaken for a bad archive."""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import pytest

from skypi.core.errors import InvalidDistribution
from skypi.core.filenames import parse_filename
from skypi.core.metadata import read_file_metadata, read_metadata
from tests.dists import wheel_bytes, wheel_name

WHEEL = wheel_bytes("poison", "1.0")
NAME = wheel_name("poison", "1.0")


def _patch_headers(data: bytes, *, flags: int = 0, version: int | None = None) -> bytes:
    """Set general-purpose flag bits (and "version needed to extract") in every local and
    central zip header, as a hand-made archive may."""
    out = bytearray(data)
    for signature, flag_at, version_at in ((b"PK\x03\x04", 6, 4), (b"PK\x01\x02", 8, 6)):
        at = out.find(signature)
        while at >= 0:
            struct.pack_into(
                "<H", out, at + flag_at, struct.unpack_from("<H", out, at + flag_at)[0] | flags
            )
            if version is not None:
                struct.pack_into("<H", out, at + version_at, version)
            at = out.find(signature, at + 4)
    return bytes(out)


POISONED = {
    "encrypted flag": _patch_headers(WHEEL, flags=0x1),
    "compressed patched data flag": _patch_headers(WHEEL, flags=0x20),
    "strong encryption flag": _patch_headers(WHEEL, flags=0x40),
    "unsupported version needed to extract": _patch_headers(WHEEL, version=99),
    "name flagged UTF-8 that is not": _patch_headers(
        WHEEL.replace(b"RECORD", b"RECOR\xff"), flags=0x800
    ),
}


@pytest.mark.parametrize("case", sorted(POISONED))
def test_a_poisoned_wheel_is_refused_with_a_reason(case: str) -> None:
    data = POISONED[case]
    with pytest.raises(InvalidDistribution, match="Invalid distribution file"):
        read_file_metadata(parse_filename(NAME), io.BytesIO(data), len(data))


class StorageDown(Exception):
    """Not an OSError: what botocore raises when a ranged GET fails."""


def test_a_storage_fault_under_the_reader_is_not_a_bad_archive() -> None:
    def read_at(start: int, length: int) -> bytes:
        raise StorageDown("connection reset")

    @contextmanager
    def open_stream() -> Iterator[IO[bytes]]:
        raise StorageDown("connection reset")
        yield io.BytesIO()

    for filename in (NAME, "poison-1.0.tar.gz"):
        with pytest.raises(StorageDown):
            read_metadata(parse_filename(filename), 1000, read_at, open_stream)
