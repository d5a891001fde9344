"""Mutated distributions for the fuzz of the archive reader (``tests/unit/test_archive_fuzz.py``).

Each format starts from a valid file (the builders of ``tests/dists.py``) and each mutant is
made by one :class:`random.Random` seeded with the format and the mutant's number, so a failing
mutant is rebuilt exactly from ``(format, number)``. The mutations are the ones a hand-made
archive uses against a reader: header flag bits flipped, sizes that lie (zip local and central
headers, the end-of-central-directory counts and offsets, tar member sizes), a cut at every
structural boundary, random bytes corrupted, names in bad encodings, duplicate members, huge
counts, and the compression layer (gzip, bzip2) itself cut or corrupted.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import random
import struct
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from tests.dists import sdist_bytes, wheel_bytes, wheel_name, zip_sdist_bytes

NAME, VERSION = "fuzzed", "1.0"
LOCAL, CENTRAL, END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
ZIP64_END, ZIP64_LOCATOR = b"PK\x06\x06", b"PK\x06\x07"
# (offset in the record, struct format) of the fields a mutant may lie about
LOCAL_FIELDS = [(4, "<H"), (6, "<H"), (8, "<H"), (14, "<I"), (18, "<I"), (22, "<I"), (26, "<H")]
LOCAL_FIELDS += [(28, "<H")]
CENTRAL_FIELDS = [(6, "<H"), (8, "<H"), (10, "<H"), (16, "<I"), (20, "<I"), (24, "<I")]
CENTRAL_FIELDS += [(28, "<H"), (30, "<H"), (32, "<H"), (38, "<I"), (42, "<I")]
END_FIELDS = [(4, "<H"), (6, "<H"), (8, "<H"), (10, "<H"), (12, "<I"), (16, "<I"), (20, "<H")]
TAR_FIELDS = [(100, 8), (124, 12), (136, 12), (148, 8), (156, 1), (257, 6), (345, 155)]


@dataclass(frozen=True)
class Format:
    """One kind of distribution: its filename, a valid file, and how its bytes are wrapped."""

    filename: str
    valid: bytes
    container: str  # "zip", or the tar's compression: "gz", "bz2"


def _pkg_info() -> bytes:
    return f"Metadata-Version: 2.2\nName: {NAME}\nVersion: {VERSION}\n\n".encode()


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in members:
            info = tarfile.TarInfo(path)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _plain_tar() -> bytes:
    top = f"{NAME}-{VERSION}"
    return _tar([(f"{top}/pyproject.toml", b"[build-system]\n"), (f"{top}/PKG-INFO", _pkg_info())])


FORMATS: dict[str, Format] = {
    "wheel": Format(wheel_name(NAME, VERSION), wheel_bytes(NAME, VERSION), "zip"),
    "zip sdist": Format(f"{NAME}-{VERSION}.zip", zip_sdist_bytes(NAME, VERSION), "zip"),
    "tar.gz sdist": Format(f"{NAME}-{VERSION}.tar.gz", sdist_bytes(NAME, VERSION), "gz"),
    "tar.bz2 sdist": Format(f"{NAME}-{VERSION}.tar.bz2", bz2.compress(_plain_tar()), "bz2"),
}


def _records(data: bytes, signature: bytes) -> list[int]:
    found, at = [], data.find(signature)
    while at >= 0:
        found.append(at)
        at = data.find(signature, at + 1)
    return found


def _lie(rng: random.Random, value: int, bits: int) -> int:
    """A plausible lie about a number: off by a little, zero, all ones, or anything."""
    top = (1 << bits) - 1
    choice = rng.randrange(5)
    if choice == 0:
        return max(0, min(top, value + rng.choice([-1, 1, -4, 4, 512, -512, 4096])))
    return [0, top, rng.randrange(top + 1), value * 2 % (top + 1)][choice - 1]


def _set_field(data: bytearray, at: int, fmt: str, value: int) -> None:
    if at + struct.calcsize(fmt) <= len(data):
        struct.pack_into(fmt, data, at, value)


def _zip_field(rng: random.Random, data: bytearray) -> None:
    """A lie in one field of a local header, a central header or the end record."""
    table = {LOCAL: LOCAL_FIELDS, CENTRAL: CENTRAL_FIELDS, END: END_FIELDS}
    signature = rng.choice(list(table))
    places = _records(bytes(data), signature)
    if not places:
        return
    at = rng.choice(places)
    offset, fmt = rng.choice(table[signature])
    if at + offset + struct.calcsize(fmt) > len(data):
        return
    (value,) = struct.unpack_from(fmt, data, at + offset)
    if offset in (6, 8) and fmt == "<H" and rng.random() < 0.6:  # flags: flip one bit
        value ^= 1 << rng.randrange(16)
    else:
        value = _lie(rng, value, 8 * struct.calcsize(fmt))
    _set_field(data, at + offset, fmt, value)


def _zip_flags(rng: random.Random, data: bytearray) -> None:
    """The same flag bits (encrypted, data descriptor, patched, strong encryption, UTF-8,
    masked header...) set in every header, as a hand-made archive does."""
    bit = 1 << rng.choice([0, 1, 2, 3, 4, 5, 6, 11, 13, 14, 15])
    for signature, place in ((LOCAL, 6), (CENTRAL, 8)):
        for at in _records(bytes(data), signature):
            (value,) = struct.unpack_from("<H", data, at + place)
            _set_field(data, at + place, "<H", value | bit)


def _zip_sizes(rng: random.Random, data: bytearray) -> None:
    """Every header's compressed or uncompressed size, or its method, made to lie alike."""
    field = rng.choice([("size", 18, 20, "<I"), ("size", 22, 24, "<I"), ("method", 8, 10, "<H")])
    value = rng.choice([0, 1, 0xFFFFFFFF, rng.randrange(1 << 24), 12, 14, 99])
    for signature, place in ((LOCAL, field[1]), (CENTRAL, field[2])):
        for at in _records(bytes(data), signature):
            _set_field(data, at + place, field[3], value & (0xFFFF if field[3] == "<H" else ~0))


def _zip_name(rng: random.Random, data: bytearray) -> None:
    """A name flagged UTF-8 that is not, or bytes no codec maps, in a central header."""
    places = _records(bytes(data), CENTRAL)
    if not places:
        return
    at = rng.choice(places)
    (length,) = struct.unpack_from("<H", data, at + 28)
    if length:
        data[at + 46 + rng.randrange(length)] = rng.choice([0xFF, 0xC3, 0x80, 0x00, 0x2F, 0x5C])
    if rng.random() < 0.7:
        (flags,) = struct.unpack_from("<H", data, at + 8)
        _set_field(data, at + 8, "<H", flags | 0x800)


def _zip_duplicate(rng: random.Random, valid: bytes) -> bytes:
    """The archive written again with one member twice (or its name reused for another)."""
    with zipfile.ZipFile(io.BytesIO(valid)) as source:
        members = [(i, source.read(i)) for i in source.infolist()]
    twice = rng.choice(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for info, body in [*members, (twice[0], rng.choice([twice[1], b"x", b""]))]:
                target.writestr(info, body)
    return out.getvalue()


def _zip_counts(rng: random.Random, data: bytearray) -> None:
    """The end record claims huge (or zip64) counts, sizes and offsets."""
    for at in _records(bytes(data), END):
        for offset in rng.sample([8, 10, 12, 16], rng.randrange(1, 5)):
            fmt = "<H" if offset < 12 else "<I"
            _set_field(data, at + offset, fmt, 0xFFFF if fmt == "<H" else 0xFFFFFFFF)


def _boundaries(data: bytes, container: str) -> list[int]:
    """Where a cut hurts most: at each record (and its fixed part's end), or each tar block."""
    if container == "zip":
        cuts = [0, len(data) - 22, len(data) - 1]
        for signature, fixed in ((LOCAL, 30), (CENTRAL, 46), (END, 22)):
            for at in _records(data, signature):
                cuts += [at, at + 4, at + fixed]
        return sorted({c for c in cuts if 0 <= c < len(data)})
    return [*range(0, len(data), 512), len(data) - 1024, len(data) - 1]


def _corrupt(rng: random.Random, data: bytearray) -> None:
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        data[rng.randrange(len(data))] = rng.randrange(256)


def _tar_header(rng: random.Random, data: bytearray) -> None:
    """A lie in one field of one tar header, its checksum made right again (or not)."""
    headers = [at for at in range(0, len(data) - 512, 512) if data[at + 257 : at + 262] == b"ustar"]
    if not headers:
        return
    at = rng.choice(headers)
    offset, width = rng.choice(TAR_FIELDS)
    if offset == 124:  # the size: more bytes than follow, fewer, or not a number
        size = rng.choice([10**6, 10**9, 8**11 - 1, 1, 0, 513, 2**40])
        text = rng.choice([f"{size:0{width - 1}o}\0", "\x80" + "\xff" * (width - 1), "zz"])
        value = text.encode("latin-1")[:width].ljust(width, b"\0")
    elif offset == 156:  # the type: long names, pax headers, sparse files, links, devices
        value = rng.choice(b"0123456LKxgSVMDAX\0\xff").to_bytes(1, "big")
    else:
        value = bytes(rng.randrange(256) for _ in range(width))
    data[at + offset : at + offset + width] = value
    if rng.random() < 0.8:
        data[at + 148 : at + 156] = b" " * 8
        data[at + 148 : at + 156] = f"{sum(data[at : at + 512]):06o}\0 ".encode()


def _tar_member(rng: random.Random) -> bytes:
    """A tar built with hostile members: bad name encodings, pax records that lie, members
    repeated, a PKG-INFO that is a link or a folder."""
    top = f"{NAME}-{VERSION}"
    members = [(f"{top}/pyproject.toml", b"x"), (f"{top}/PKG-INFO", _pkg_info())]
    kind = rng.randrange(4)
    raw = _tar(members)
    data = bytearray(raw)
    if kind == 0:  # a pax record whose length lies
        at = data.find(b" path=")
        if at > 0:
            data[at - 2 : at] = rng.choice([b"99", b"00", b"1 ", b"x9"])
    elif kind == 1:  # a name in bytes no codec maps
        at = data.find(b"PKG-INFO")
        data[at : at + 3] = rng.choice([b"\xff\xfe\x00", b"\xc3\x28\x80", b"../"])
    elif kind == 2:  # members repeated
        return _tar(members + [rng.choice(members)] * rng.randrange(1, 4))
    else:  # many empty members before PKG-INFO
        many = [(f"{top}/f{i}", b"") for i in range(rng.randrange(50, 400))]
        return _tar(many + members)
    return bytes(data)


def _compress(container: str, tar: bytes) -> bytes:
    return gzip.compress(tar, mtime=0) if container == "gz" else bz2.compress(tar)


def _decompress(container: str, data: bytes) -> bytes:
    return gzip.decompress(data) if container == "gz" else bz2.decompress(data)


Mutation = Callable[[random.Random, Format], bytes]


def _in_place(change: Callable[[random.Random, bytearray], None]) -> Mutation:
    def mutate(rng: random.Random, fmt: Format) -> bytes:
        data = bytearray(fmt.valid)
        change(rng, data)
        return bytes(data)

    return mutate


def _in_tar(change: Callable[[random.Random, bytearray], None]) -> Mutation:
    """Change the tar inside, then compress it again: the stream ends cleanly."""

    def mutate(rng: random.Random, fmt: Format) -> bytes:
        data = bytearray(_decompress(fmt.container, fmt.valid))
        change(rng, data)
        return _compress(fmt.container, bytes(data))

    return mutate


def _truncate(rng: random.Random, fmt: Format) -> bytes:
    if fmt.container == "zip" or rng.random() < 0.4:
        data = fmt.valid if fmt.container == "zip" else _decompress(fmt.container, fmt.valid)
        cut = rng.choice(_boundaries(data, "zip" if fmt.container == "zip" else "tar"))
        if fmt.container == "zip":
            return data[:cut]
        return _compress(fmt.container, data[:cut])  # a tar cut short, its stream whole
    return fmt.valid[: rng.randrange(len(fmt.valid))]  # the compressed stream cut short


def _tar_cut(rng: random.Random, data: bytearray) -> None:
    del data[rng.choice(_boundaries(bytes(data), "tar")) :]


ZIP_MUTATIONS: dict[str, Mutation] = {
    "field lie": _in_place(_zip_field),
    "flag bits": _in_place(_zip_flags),
    "sizes and method": _in_place(_zip_sizes),
    "bad name": _in_place(_zip_name),
    "duplicate member": lambda rng, fmt: _zip_duplicate(rng, fmt.valid),
    "huge counts": _in_place(_zip_counts),
    "truncated": _truncate,
    "corrupt bytes": _in_place(_corrupt),
}
TAR_MUTATIONS: dict[str, Mutation] = {
    "tar header lie": _in_tar(_tar_header),
    "tar members": lambda rng, fmt: _compress(fmt.container, _tar_member(rng)),
    "tar cut, stream whole": _in_tar(_tar_cut),
    "truncated": _truncate,
    "corrupt tar bytes": _in_tar(_corrupt),
    "corrupt compressed bytes": _in_place(_corrupt),
}


def mutant(format_name: str, number: int, seed: int) -> tuple[str, bytes]:
    """The mutant ``number`` of a format: (the mutation's name, its bytes)."""
    fmt = FORMATS[format_name]
    rng = random.Random(f"{seed}:{format_name}:{number}")
    table = ZIP_MUTATIONS if fmt.container == "zip" else TAR_MUTATIONS
    name = rng.choice(sorted(table))
    data = table[name](rng, fmt)
    if rng.random() < 0.25:  # a second harm on top (if the first left something to harm)
        second = rng.choice(sorted(table))
        with contextlib.suppress(Exception):  # the first left nothing the second can parse
            data = table[second](rng, Format(fmt.filename, data, fmt.container))
            name = f"{name} + {second}"
    return name, data
