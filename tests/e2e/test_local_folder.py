"""``skypi serve`` over a folder, tried as the folder's other users would: slow writers, FIFOs,
deleted derived files, kill -9, restored copies, a read-only folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from packaging.utils import NormalizedName

from skypi.core.pages import RootEntry
from skypi.core.render import html_serial
from skypi.indexer.writer import PageWriter
from skypi.store.local import TEMP_PREFIX, LocalStore
from tests.dists import (
    metadata_text,
    sdist_bytes,
    sdist_name,
    upload_form,
    wheel_bytes,
    wheel_name,
)
from tests.e2e.conftest import BIN, Server, pip, start_server, wait_for

pytestmark = pytest.mark.e2e
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _files(server: Server, project: str) -> dict[str, tuple[str, int]]:
    page = httpx.get(f"{server.index}{project}/", headers=JSON, timeout=10)
    if page.status_code != 200:
        return {}
    return {f["filename"]: (f["hashes"]["sha256"], f["size"]) for f in page.json()["files"]}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _write_slowly(path: Path, data: bytes, *, reopen: bool) -> None:
    """Four chunks a second apart, in one open file (``reopen``: one append per chunk)."""
    step = -(-len(data) // 4)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    if reopen:
        for chunk in chunks:
            with path.open("ab") as fh:
                fh.write(chunk)
            time.sleep(1)
        return
    with path.open("wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
            fh.flush()
            time.sleep(1)


def _noise() -> bytes:
    """Incompressible bytes after the metadata: a prefix of the archive holds all of it."""
    return os.urandom(200_000)


def test_slowly_written_files_are_listed_only_with_their_final_hash(server: Server) -> None:
    folder = server.folder / "slow"
    folder.mkdir()
    writes = {
        folder / sdist_name("slow", "1.0"): (sdist_bytes("slow", "1.0", blob=_noise()), False),
        folder / wheel_name("slow", "1.0"): (
            wheel_bytes("slow", "1.0", blob=os.urandom(50_000)),
            False,
        ),
        folder / sdist_name("slow", "2.0"): (sdist_bytes("slow", "2.0", blob=_noise()), True),
        folder / wheel_name("slow", "2.0"): (
            wheel_bytes("slow", "2.0", blob=os.urandom(50_000)),
            True,
        ),
    }
    final = {p.name: (hashlib.sha256(d).hexdigest(), len(d)) for p, (d, _) in writes.items()}
    threads = [
        threading.Thread(target=_write_slowly, args=(p, d), kwargs={"reopen": r})
        for p, (d, r) in writes.items()
    ]
    for thread in threads:
        thread.start()
    seen: dict[str, set[tuple[str, int]]] = {}
    while any(t.is_alive() for t in threads):
        for name, listed in _files(server, "slow").items():
            seen.setdefault(name, set()).add(listed)
        time.sleep(0.1)
    assert wait_for(lambda: _files(server, "slow") == final, timeout=15), _files(server, "slow")
    for name, listed in _files(server, "slow").items():
        seen.setdefault(name, set()).add(listed)
    assert seen == {name: {hashed} for name, hashed in final.items()}


def test_a_fifo_blocks_neither_start_up_nor_reindex_nor_later_drops(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    (folder / "pipe").mkdir(parents=True)
    (folder / "pipe" / wheel_name("pipe", "1.0")).write_bytes(wheel_bytes("pipe", "1.0"))
    os.mkfifo(folder / "pipe" / sdist_name("pipe", "1.0"))
    os.mkfifo(folder / "pipe" / "notes.txt")
    server = start_server(folder, tmp_path / "log")
    try:
        assert set(_files(server, "pipe")) == {wheel_name("pipe", "1.0")}
        check = subprocess.run(
            [str(BIN / "skypi"), "reindex", str(folder), "--check"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stdout + check.stderr
        (folder / "pipe" / wheel_name("pipe", "2.0")).write_bytes(wheel_bytes("pipe", "2.0"))
        assert wait_for(lambda: wheel_name("pipe", "2.0") in _files(server, "pipe"))
    finally:
        server.stop()


def test_a_deleted_metadata_file_is_made_again_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    (folder / "meta").mkdir(parents=True)
    wheel = folder / "meta" / wheel_name("meta", "1.0")
    wheel.write_bytes(wheel_bytes("meta", "1.0"))
    url = f"packages/meta/{wheel.name}.metadata"
    server = start_server(folder, tmp_path / "log")
    try:
        body = httpx.get(f"{server.url}/{url}").content
        assert body.startswith(b"Metadata-Version")
    finally:
        server.stop()
    LocalStore(folder).path_for(url).unlink()
    server = start_server(folder, tmp_path / "log")
    try:
        again = httpx.get(f"{server.url}/{url}")
        assert (again.status_code, again.content) == (200, body)
    finally:
        server.stop()


def test_pip_installs_a_file_overwritten_in_the_folder_with_its_new_hash(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    """``rm`` then ``cp`` of other bytes (other metadata too) under a listed name: the page
    lists the stored bytes at once, and pip, which checks the file's hash and its PEP 658
    metadata's hash against the page, installs them."""
    folder = server.folder / "swap"
    folder.mkdir()
    wheel = folder / wheel_name("swap", "1.0")
    wheel.write_bytes(wheel_bytes("swap", "1.0", payload=b"first"))
    first = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert wait_for(lambda: _files(server, "swap").get(wheel.name, ("",))[0] == first)
    meta = metadata_text("swap", "1.0", summary="Rebuilt in place")
    data = wheel_bytes("swap", "1.0", payload=b"second", metadata=meta)
    wheel.unlink()
    wheel.write_bytes(data)
    new = hashlib.sha256(data).hexdigest()
    assert wait_for(lambda: _files(server, "swap").get(wheel.name, ("",))[0] == new)
    target = tmp_path / "target"
    result = pip(
        "install",
        "-v",
        "--no-cache-dir",
        "--index-url",
        server.index,
        "--target",
        str(target),
        "swap==1.0",
        env=env,
    )
    assert ".whl.metadata" in result.stdout + result.stderr  # the new metadata, hash checked
    assert "b'second'" in (target / "swap" / "__init__.py").read_text()
    log = server.log.read_text()
    assert any(first in line and new in line and "WARNING" in line for line in log.splitlines())


def test_serve_starts_over_a_root_listing_cut_short(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    (folder / "cut").mkdir(parents=True)
    (folder / "cut" / wheel_name("cut", "1.0")).write_bytes(wheel_bytes("cut", "1.0"))
    server = start_server(folder, tmp_path / "log")
    server.stop()
    listing = LocalStore(folder).path_for("simple/index.json")
    listing.write_bytes(listing.read_bytes()[:20])
    (folder / "new").mkdir()
    (folder / "new" / wheel_name("new", "1.0")).write_bytes(wheel_bytes("new", "1.0"))
    server = start_server(folder, tmp_path / "log")
    try:
        root = httpx.get(server.index, headers=JSON, timeout=10).json()
        assert sorted(p["name"] for p in root["projects"]) == ["cut", "new"]
        assert "the root listing cannot be read" in (tmp_path / "log").read_text()
    finally:
        server.stop()


def test_pip_installs_a_project_the_root_listing_does_not_list_yet(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """pip and uv go straight to ``/simple/<project>/``: a root listing that does not list a
    project yet (written later, or not at all: a kill between the page write and the root
    write) does not stop its install, and the next start puts the listing right."""
    folder = tmp_path / "packages"
    (folder / "known").mkdir(parents=True)
    (folder / "known" / wheel_name("known", "1.0")).write_bytes(wheel_bytes("known", "1.0"))
    server = start_server(folder, tmp_path / "log")
    try:
        (folder / "late").mkdir()
        (folder / "late" / wheel_name("late", "1.0")).write_bytes(wheel_bytes("late", "1.0"))
        assert wait_for(lambda: wheel_name("late", "1.0") in _files(server, "late"))
        # the listing and its followers as a kill before the root write leaves them
        PageWriter(LocalStore(folder)).update_root({NormalizedName("late"): RootEntry(None)})
        root = httpx.get(server.index, headers=JSON, timeout=10).json()
        assert [p["name"] for p in root["projects"]] == ["known"]
        target = tmp_path / "target"
        pip("install", "--no-cache-dir", "--index-url", server.index, "--target", str(target),
            "late==1.0", env=env)  # fmt: skip
        assert (target / "late" / "__init__.py").is_file()
    finally:
        server.stop()
    server = start_server(folder, tmp_path / "log")
    try:
        root = httpx.get(server.index, headers=JSON, timeout=10).json()
        assert sorted(p["name"] for p in root["projects"]) == ["known", "late"]
    finally:
        server.stop()


def _upload_until(server: Server, stop: threading.Event, worker: int) -> None:
    n = 0
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            n += 1
            version = f"1.{worker}.{n}"
            data = wheel_bytes("crash", version, blob=os.urandom(16 * 1024 * 1024))
            name = wheel_name("crash", version)
            try:
                client.post(
                    f"{server.url}/legacy/",
                    auth=("__token__", server.token),
                    data=upload_form(data, name, "crash", version),
                    files={"content": (name, data)},
                )
            except httpx.TransportError:
                return


def _kill_during_uploads(server: Server) -> None:
    """Upload from 4 threads and kill -9 the server the moment a write is under way (its
    temporary file exists)."""
    stop = threading.Event()
    uploaders = [threading.Thread(target=_upload_until, args=(server, stop, i)) for i in range(4)]
    for thread in uploaders:
        thread.start()
    assert wait_for(lambda: len(_files(server, "crash")) >= 2, timeout=60)
    writing = server.folder / "crash"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(name.startswith(TEMP_PREFIX) for name in os.listdir(writing)):
            break
    server.process.kill()  # at once, or after a minute without a write seen under way
    server.process.wait()
    stop.set()
    for thread in uploaders:
        thread.join()


def test_after_kill_9_during_uploads_no_temp_file_is_left_and_html_matches_json(
    server: Server, tmp_path: Path
) -> None:
    current = server
    for attempt in range(5):  # a write may finish between seeing its temporary file and the kill
        _kill_during_uploads(current)
        if list(server.folder.rglob(f"{TEMP_PREFIX}*")):
            break
        current = start_server(server.folder, tmp_path / f"again-{attempt}.log", token=server.token)
    else:
        pytest.fail("the kill missed every write, 5 times")
    restarted = start_server(server.folder, tmp_path / "restart.log", token=server.token)
    try:
        assert list(server.folder.rglob(f"{TEMP_PREFIX}*")) == []
        state = server.folder / ".skypi" / "simple"
        for page in state.rglob("index.json"):
            serial = json.loads(page.read_text())["meta"]["_last-serial"]
            for twin in ("index.html", "index.v1html"):
                assert html_serial((page.parent / twin).read_bytes()) == serial, page
        listed = _files(restarted, "crash")
        stored = {p.name for p in (server.folder / "crash").glob("*.whl")}
        assert set(listed) == stored
    finally:
        restarted.stop()


def test_a_restored_copy_starts_without_reading_files_and_idles_at_no_cpu(tmp_path: Path) -> None:
    folder = tmp_path / "packages"
    for i in range(40):
        (folder / f"idle-{i}").mkdir(parents=True)
        (folder / f"idle-{i}" / wheel_name(f"idle-{i}", "1.0")).write_bytes(
            wheel_bytes(f"idle-{i}", "1.0")
        )
    (folder / "idle-0" / "broken-1.0-py3-none-any.whl").write_bytes(b"refused")
    server = start_server(folder, tmp_path / "first.log")
    server.stop()
    conflicting = folder / "idle-1" / wheel_name("idle-1", "1.0")
    conflicting.write_bytes(wheel_bytes("idle-1", "1.0", payload=b"other bytes"))
    copy = tmp_path / "restored"
    subprocess.run(["cp", "-a", str(folder), str(copy)], check=True)
    log = tmp_path / "restored.log"
    server = start_server(copy, log)
    try:
        assert "read 1 project again" in log.read_text()  # the conflict (the refused file is known)
        for i in range(5):
            httpx.get(f"{server.index}idle-{i}/")
            httpx.get(f"{server.url}/packages/idle-{i}/{wheel_name(f'idle-{i}', '1.0')}")
        conflicting.touch()  # in the original folder: nothing to do with this server
        time.sleep(1)
        before = _cpu_seconds(server.process.pid)
        time.sleep(5)
        spent = _cpu_seconds(server.process.pid) - before
        assert spent < 1.0, f"{spent:.2f} CPU-s in 5 idle seconds"
    finally:
        server.stop()
    server = start_server(copy, tmp_path / "again.log")
    server.stop()
    again = (tmp_path / "again.log").read_text()
    assert "no file added or removed" in again
    assert " again" not in again.split("index ready:", 1)[1].splitlines()[0]  # no project read


def test_a_read_only_folder_is_served_with_state_dir_and_left_untouched(tmp_path: Path) -> None:
    folder, state = tmp_path / "readonly", tmp_path / "state"
    (folder / "ro").mkdir(parents=True)
    (folder / "ro" / wheel_name("ro", "1.0")).write_bytes(wheel_bytes("ro", "1.0"))
    (folder / "ro" / sdist_name("ro", "1.0")).write_bytes(sdist_bytes("ro", "1.0"))
    for path in [*folder.rglob("*"), folder]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    before = sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    server = start_server(folder, tmp_path / "log", "--state-dir", str(state))
    try:
        assert set(_files(server, "ro")) == {wheel_name("ro", "1.0"), sdist_name("ro", "1.0")}
        meta = httpx.get(f"{server.url}/packages/ro/{wheel_name('ro', '1.0')}.metadata")
        assert meta.status_code == 200
    finally:
        server.stop()
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    after = sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*"))
    assert after == before


def test_a_file_cut_short_while_it_is_sent_aborts_the_download(tmp_path: Path) -> None:
    """A file truncated in the folder after its 200 and its Content-Length went out (the
    server has it open): the connection is aborted, so the client sees an incomplete body
    (an error, never a short file taken for whole), and the log names the file. 32 MiB is
    more than loopback's socket buffers hold, so the server is still reading it when the
    file is cut (it stops on the buffers, not on a clock)."""
    folder = tmp_path / "packages"
    (folder / "big").mkdir(parents=True)
    wheel = folder / "big" / wheel_name("big", "1.0")
    wheel.write_bytes(wheel_bytes("big", "1.0", blob=os.urandom(32 * 1024 * 1024)))
    server = start_server(folder, tmp_path / "server.log")
    received: list[bytes] = []
    try:
        with (
            httpx.Client(timeout=30) as client,
            client.stream("GET", f"{server.url}/packages/big/{wheel.name}") as answer,
        ):
            assert answer.status_code == 200
            declared = int(answer.headers["content-length"])
            os.truncate(wheel, 0)
            with pytest.raises(httpx.RemoteProtocolError):
                received.extend(answer.iter_raw())
    finally:
        server.stop()
    assert sum(map(len, received)) < declared
    log = server.log.read_text()
    assert f"packages/big/{wheel.name} ended after " in log
    assert f"of {declared:,} bytes (changed while it was sent): the answer is aborted" in log
