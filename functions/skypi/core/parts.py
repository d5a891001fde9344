"""How a direct upload is cut into parts: S3's multipart limits, and the digests each part is
signed with.

S3 takes parts of 5 MiB to 5 GiB (the last one may be smaller) and at most 10,000 of them
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). Each part is uploaded
with its own SHA-256 (``x-amz-checksum-sha256``), signed into its presigned URL: S3 refuses a
part whose bytes do not match, and a bucket with Object Lock refuses any part without a
checksum (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html).
The client knows the bytes, so it hashes the parts and declares them with the file.

>>> part_size(200 * MiB) == 64 * MiB
True
>>> part_ranges(150 * MiB, 64 * MiB)[-1] == (2 * 64 * MiB, 22 * MiB)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from skypi.core.errors import UploadRejected
from skypi.core.keys import is_sha256

MiB = 1024 * 1024
MIN_PART = 5 * MiB  # S3's smallest part (but the last)
MAX_PART = 5 * 1024 * MiB  # S3's largest part
MAX_PARTS = 10_000
PART_SIZE = 64 * MiB  # bigger than S3's minimum: fewer requests, fewer signatures
MULTIPART_FROM = PART_SIZE  # smaller files go in one PUT


def part_size(size: int) -> int:
    """Parts of at least 64 MiB, and never more than S3's 10,000 of them."""
    return max(PART_SIZE, math.ceil(size / MAX_PARTS))


def part_ranges(size: int, part: int) -> list[tuple[int, int]]:
    """``(offset, length)`` of each part, in part-number order (part 1 first)."""
    return [(start, min(part, size - start)) for start in range(0, size, part)]


def check_parts(size: int, part: int | None, digests: Sequence[str]) -> int:
    """The part size, if ``part`` and one SHA-256 per part fit S3's limits; else why not."""
    if part is None or not digests:
        raise UploadRejected(
            "A multipart upload needs part_size and one part_sha256 per part (S3 checks each "
            "part's checksum): upgrade skypi and run skypi publish again."
        )
    if not MIN_PART <= part <= MAX_PART:
        raise UploadRejected(f"part_size must be {MIN_PART:,} to {MAX_PART:,} bytes.")
    count = math.ceil(size / part)
    if count > MAX_PARTS:
        raise UploadRejected(f"{count:,} parts is more than S3's {MAX_PARTS:,}: use larger parts.")
    if len(digests) != count:
        raise UploadRejected(
            f"{len(digests):,} part digests for {count:,} parts of {part:,} bytes: "
            "send one SHA-256 per part."
        )
    if not all(is_sha256(d) for d in digests):
        raise UploadRejected("Each part_sha256 must be 64 lowercase hex digits.")
    return part
