"""The rules PyPI applies to what is inside an archive, and the bounds on reading one. Each case
fails when its rule is removed: the archive is otherwise valid, so only that rule refuses it."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from skypi.core.errors import InvalidDistribution, UploadRejected
from skypi.core.filenames import parse_filename
from skypi.core.metadata import Limits, read_metadata
from skypi.core.upload import check_digests, validate_filename, validate_form
from skypi.indexer.service import Indexer
from skypi.local.startup import reconcile
from skypi.store.local import LocalStore
from tests.dists import metadata_text, upload_form, wheel_bytes, zip_sdist_bytes

KELVIN = "\u212aelvin"  # KELVIN SIGN + "elvin": lowercases to the ASCII "kelvin"


def _wheel(members: dict[str, str], name: str = "foo") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in members.items():
            zf.writestr(path, text.replace("{name}", name))
    return buffer.getvalue()


def _members(name: str = "foo", metadata: str | None = None) -> dict[str, str]:
    info = f"{name}-1.0.dist-info"
    return {
        f"{name}/__init__.py": "",
        f"{info}/METADATA": metadata or metadata_text(name, "1.0"),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/RECORD": "",
    }


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _read(filename: str, data: bytes, limits: Limits | None = None) -> object:
    return read_metadata(
        parse_filename(filename),
        len(data),
        lambda start, length: data[start : start + length],
        lambda: io.BytesIO(data),
        limits or Limits(),
    )


PKG_INFO = metadata_text("foo", "1.0").encode()


def _zip_with_twice(members: dict[str, str], twice: str, text: str) -> bytes:
    """A zip holding ``members`` and a second member named ``twice`` (last in the directory,
    so a reader that takes the last one reads ``text``)."""
    data = _wheel(members)
    buffer = io.BytesIO(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate name
        with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(twice, text)
    return buffer.getvalue()


def _tar_entries(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path, data in entries:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


REFUSED = {
    "wheel without WHEEL": (
        "foo-1.0-py3-none-any.whl",
        _wheel({k: v for k, v in _members().items() if not k.endswith("WHEEL")}),
        "WHEEL not found at foo-1.0.dist-info/WHEEL",
    ),
    "wheel without RECORD": (
        "foo-1.0-py3-none-any.whl",
        _wheel({k: v for k, v in _members().items() if not k.endswith("RECORD")}),
        "does not contain the required RECORD file: foo-1.0.dist-info/RECORD",
    ),
    "Kelvin sign in a wheel's Name": (
        "kelvin-1.0-py3-none-any.whl",
        _wheel(_members("kelvin", metadata_text(KELVIN, "1.0"))),
        f"{KELVIN!r} is an invalid value for Name",
    ),
    "long s in a wheel's Name": (
        "six-1.0-py3-none-any.whl",
        _wheel(_members("six", metadata_text("\u017fix", "1.0"))),
        "is an invalid value for Name",
    ),
    "sdist PKG-INFO under another folder": (
        "foo-1.0.tar.gz",
        _tar({"src/PKG-INFO": PKG_INFO, "src/setup.py": b""}),
        "PKG-INFO not found at foo-1.0/PKG-INFO",
    ),
    "sdist PKG-INFO under another version's folder": (
        "foo-1.0.tar.gz",
        _tar({"foo-2.0/PKG-INFO": PKG_INFO}),
        "PKG-INFO not found at foo-1.0/PKG-INFO",
    ),
    "zip sdist PKG-INFO under another folder": (
        "foo-1.0.zip",
        _wheel({"src/PKG-INFO": PKG_INFO.decode(), "src/setup.py": ""}),
        "PKG-INFO not found at foo-1.0/PKG-INFO",
    ),
    # Every member of a tar sdist is under its one folder, wherever PKG-INFO comes.
    "sdist with a second top-level folder after PKG-INFO": (
        "foo-1.0.tar.gz",
        _tar({"foo-1.0/PKG-INFO": PKG_INFO, "foo-1.0/setup.py": b"", "evil/x.py": b""}),
        "Incorrect number of top-level directories",
    ),
    "sdist with a top-level file after PKG-INFO": (
        "foo-1.0.tar.gz",
        _tar({"foo-1.0/PKG-INFO": PKG_INFO, "setup.py": b""}),
        "Incorrect number of top-level directories",
    ),
    "sdist with PKG-INFO twice": (
        "foo-1.0.tar.gz",
        _tar_entries(
            [
                ("foo-1.0/PKG-INFO", PKG_INFO),
                ("foo-1.0/PKG-INFO", metadata_text("bar", "2.0").encode()),
            ]
        ),
        "foo-1.0/PKG-INFO is there twice",
    ),
    # A member name twice in a zip: which copy is read depends on the reader (PyPI refuses).
    "wheel with METADATA twice": (
        "foo-1.0-py3-none-any.whl",
        _zip_with_twice(_members(), "foo-1.0.dist-info/METADATA", metadata_text("foo", "2.0")),
        "Duplicate member names in the archive: ['foo-1.0.dist-info/METADATA']",
    ),
    "wheel with RECORD twice": (
        "foo-1.0-py3-none-any.whl",
        _zip_with_twice(_members(), "foo-1.0.dist-info/RECORD", "x"),
        "Duplicate member names",
    ),
    "wheel with a module twice": (
        "foo-1.0-py3-none-any.whl",
        _zip_with_twice(_members(), "foo/__init__.py", "import os"),
        "Duplicate member names",
    ),
    "zip sdist with PKG-INFO twice": (
        "foo-1.0.zip",
        _zip_with_twice(
            {"foo-1.0/PKG-INFO": PKG_INFO.decode()}, "foo-1.0/PKG-INFO", metadata_text("foo", "2.0")
        ),
        "Duplicate member names",
    ),
    "Kelvin sign in an sdist's Name": (
        "kelvin-1.0.tar.gz",
        _tar({"kelvin-1.0/PKG-INFO": metadata_text(KELVIN, "1.0").encode()}),
        "is an invalid value for Name",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_archive_rules(case: str) -> None:
    filename, data, message = REFUSED[case]
    with pytest.raises(InvalidDistribution) as info:
        _read(filename, data)
    assert message in str(info.value)
    assert "build" in str(info.value) or "metadata" in str(info.value)  # what to do about it


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("foo-1.0-py3-none-any.whl", _wheel(_members())),
        ("foo-1.0.tar.gz", _tar({"foo-1.0/PKG-INFO": PKG_INFO})),
        (
            "Foo.Bar-1.0.tar.gz",
            _tar({"Foo.Bar-1.0/PKG-INFO": metadata_text("foo.bar", "1.0").encode()}),
        ),
        (
            "foo_bar-1.0.tar.gz",
            _tar({"foo-bar-1.0/PKG-INFO": metadata_text("foo-bar", "1.0").encode()}),
        ),
        ("Legacy-2.0.zip", zip_sdist_bytes("Legacy", "2.0")),
    ],
)
def test_what_the_rules_accept(filename: str, data: bytes) -> None:
    _read(filename, data)


def test_a_form_name_with_a_look_alike_is_refused() -> None:
    data = wheel_bytes("kelvin", "1.0")
    fields = upload_form(data, "kelvin-1.0-py3-none-any.whl", KELVIN, "1.0")
    with pytest.raises(UploadRejected, match="is an invalid value for Name"):
        validate_form({k: [v] for k, v in fields.items()})


def test_a_dropped_in_file_that_breaks_a_rule_is_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    filename, data, message = REFUSED["wheel without RECORD"]
    (folder / filename).write_bytes(data)
    caplog.set_level(logging.INFO)
    store = LocalStore(folder)
    outcome = reconcile(store, Indexer(store)).outcome  # what skypi serve does at start
    assert [key for key, _ in outcome.refused] == [f"packages/{filename}"]
    assert message in outcome.refused[0][1]
    assert message in caplog.text
    assert outcome.added == []


# -- the bounds on reading an archive ------------------------------------------------------------


def test_zip_read_budget() -> None:
    """Reading the central directory and METADATA costs a few KiB here: a 2 KiB budget stops it
    (and without the budget the same wheel reads fine, see test_what_the_rules_accept)."""
    data = _wheel({**_members(), **{f"foo/m{i}.py": "" for i in range(40)}})
    _read("foo-1.0-py3-none-any.whl", data)
    with pytest.raises(InvalidDistribution, match="The zip directory is too large"):
        _read("foo-1.0-py3-none-any.whl", data, Limits(max_zip_read_bytes=2048))


def test_zip_member_cap() -> None:
    data = _wheel({**_members(), **{f"foo/m{i}.py": "" for i in range(10)}})
    _read("foo-1.0-py3-none-any.whl", data, Limits(max_members=14))
    with pytest.raises(InvalidDistribution, match="Too many members"):
        _read("foo-1.0-py3-none-any.whl", data, Limits(max_members=13))


def test_tar_pkg_info_size_cap() -> None:
    big = metadata_text("foo", "1.0").encode() + b"A long description. " * 100
    data = _tar({"foo-1.0/PKG-INFO": big})
    _read("foo-1.0.tar.gz", data, Limits(max_metadata_bytes=len(big)))
    with pytest.raises(InvalidDistribution, match="PKG-INFO is too large"):
        _read("foo-1.0.tar.gz", data, Limits(max_metadata_bytes=len(big) - 1))


# -- the digests a client declares ---------------------------------------------------------------

WHEEL = wheel_bytes("foo", "1.0")
NAME = "foo-1.0-py3-none-any.whl"
COMPUTED = {
    "md5_digest": hashlib.md5(WHEEL, usedforsecurity=False).hexdigest(),
    "sha256_digest": hashlib.sha256(WHEEL).hexdigest(),
    "blake2_256_digest": hashlib.blake2b(WHEEL, digest_size=32).hexdigest(),
}


@pytest.mark.parametrize("field", sorted(COMPUTED))
def test_digest_mismatch(field: str) -> None:
    """Each digest alone is checked: the right one passes, a wrong one is refused."""
    others = {f: None for f in COMPUTED if f != field}
    right = validate_form(
        {k: [v] for k, v in upload_form(WHEEL, NAME, "foo", "1.0", **others).items()}
        | {field: [COMPUTED[field]]}
    )
    assert right.digests == {field: COMPUTED[field]}
    check_digests(right, COMPUTED)
    wrong_value = hashlib.sha256(b"other bytes").hexdigest()[: len(COMPUTED[field])]
    wrong = validate_form(
        {k: [v] for k, v in upload_form(WHEEL, NAME, "foo", "1.0", **others).items()}
        | {field: [wrong_value]}
    )
    with pytest.raises(UploadRejected, match="The digest supplied does not match"):
        check_digests(wrong, COMPUTED)


def test_filename_length() -> None:
    """A filename must fit the file system with its ``.metadata`` sidecar beside it."""
    form = {
        k: [v]
        for k, v in upload_form(WHEEL, NAME, "a" * 225, "1.0", sha256_digest="0" * 64).items()
    }
    request = validate_form(form)
    fits = f"{'a' * 225}-1.0-py3-none-any.whl"  # 246 bytes
    assert validate_filename(request, fits).filename == fits
    too_long = validate_form(
        {k: [v] for k, v in upload_form(WHEEL, NAME, "a" * 226, "1.0").items()}
    )
    with pytest.raises(UploadRejected, match="Filename too long: 247 bytes"):
        validate_filename(too_long, f"{'a' * 226}-1.0-py3-none-any.whl")
