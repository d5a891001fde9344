"""`skypi import`: a pypiserver folder or devpi export into a deployed index (moto) or a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from skypi import cli
from skypi.core.pages import ProjectPage
from skypi.store.local import LocalStore
from tests.aws.conftest import Emulated
from tests.dists import (
    make_sdist,
    make_wheel,
    metadata_text,
    wheel_bytes,
    wheel_name,
    zip_sdist_bytes,
)


def _source(root: Path) -> dict[str, bytes]:
    """A bit of everything an old index folder holds; returns key -> bytes expected."""
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "alice" / "dev" / "gamma" / "0.3").mkdir(parents=True)  # devpi export layout
    (root / ".cache").mkdir()
    files = [
        make_wheel(root, "alpha", "1.0"),
        make_sdist(root / "nested", "alpha", "1.0"),
        make_wheel(root / "nested" / "deeper", "beta", "2.0+local"),
        make_wheel(root / "alice" / "dev" / "gamma" / "0.3", "gamma", "0.3"),
    ]
    legacy = root / "delta-0.9.zip"
    legacy.write_bytes(zip_sdist_bytes("delta", "0.9"))
    files.append(legacy)
    make_wheel(root / ".cache", "hidden", "1.0")
    (root / "README.txt").write_text("not a package")
    (root / "alice" / "dev" / "dataindex.json").write_text("{}")
    (root / "not_a_dist.whl").write_bytes(b"junk")
    expected = {}
    for path in files:
        project = path.name.split("-")[0].replace("_", "-")
        expected[f"packages/{project}/{path.name}"] = path.read_bytes()
    return expected


def test_import_into_a_deployed_index_is_byte_identical_and_rerunnable(
    aws: Emulated, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "old-index"
    source.mkdir()
    expected = _source(source)
    bucket = aws.resources.bucket
    assert cli.main(["import", str(source), "--bucket", bucket]) == 1  # the junk .whl
    err = capsys.readouterr().err
    assert "not_a_dist.whl" in err
    assert "5 copied" in err
    for key, data in expected.items():
        stored = aws.store.get(key)[1]
        assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest(), key
    for project in ("alpha", "beta", "gamma", "delta"):
        page = ProjectPage.from_json_bytes(aws.page(f"simple/{project}/index.json"))
        for entry in page.files:
            assert entry.sha256 == hashlib.sha256(expected[entry.key]).hexdigest()
    assert aws.store.head("packages/hidden/" + wheel_name("hidden", "1.0")) is None

    (source / "not_a_dist.whl").unlink()
    assert cli.main(["import", str(source), "--bucket", bucket]) == 0  # run again: all there
    assert "0 copied, 5 already there" in capsys.readouterr().err

    impostor = source / "elsewhere"
    impostor.mkdir()
    make_wheel(impostor, "alpha", "1.0", payload=b"other bytes")
    before = aws.store.get("packages/alpha/" + wheel_name("alpha", "1.0"))[1]
    assert cli.main(["import", str(impostor), "--bucket", bucket]) == 1
    assert "already holds other bytes" in capsys.readouterr().err
    assert aws.store.get("packages/alpha/" + wheel_name("alpha", "1.0"))[1] == before


def test_import_into_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "old-index"
    source.mkdir()
    expected = _source(source)
    (source / "not_a_dist.whl").unlink()
    target = tmp_path / "packages"
    assert cli.main(["import", str(source), "--to", str(target)]) == 0
    store = LocalStore(target)
    for key, data in expected.items():
        assert store.get(key)[1] == data
    assert cli.main(["reindex", str(target), "--check"]) == 0


def test_a_messy_pypiserver_folder_imports_its_valid_files_by_their_real_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mislabelled copy (its filename says 1.0, its metadata 2.0) comes first in SOURCE's
    order; the valid file of that name is imported all the same, a byte-identical copy is
    noted once, and every message names the file in SOURCE, not a storage key."""
    source = tmp_path / "pypiserver"
    (source / "a-broken").mkdir(parents=True)
    (source / "b-good").mkdir()
    (source / "c-copy").mkdir()
    name = wheel_name("omega", "1.0")
    (source / "a-broken" / name).write_bytes(
        wheel_bytes("omega", "2.0", metadata=metadata_text("omega", "2.0"))
    )
    good = make_wheel(source / "b-good", "omega", "1.0")
    (source / "c-copy" / name).write_bytes(good.read_bytes())
    target = tmp_path / "packages"
    assert cli.main(["import", str(source), "--to", str(target)]) == 1  # the broken one
    err = capsys.readouterr().err
    assert f"not imported: {source / 'a-broken' / name}: " in err
    assert "Version in filename" in err
    assert f"a copy, imported once: {source / 'c-copy' / name}" in err
    assert "1 copied, 0 already there, 1 copies, 0 conflicts, 1 skipped" in err
    assert "packages/" not in err  # real paths, not storage keys
    assert LocalStore(target).get(f"packages/omega/{name}")[1] == good.read_bytes()
    (source / "a-broken" / name).unlink()
    assert cli.main(["import", str(source), "--to", str(target)]) == 0
    assert "0 copied, 1 already there, 1 copies" in capsys.readouterr().err
    assert cli.main(["reindex", str(target), "--check"]) == 0
