"""The servers the benchmarks compare: skypi serve, pypiserver (from PyPI) and nginx serving
skypi's own pages as static files (the physical limit). A peer that cannot be installed is
skipped with a line saying why."""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
PYPISERVER = "pypiserver[cache]==2.4.2"
DEVPI = "devpi-server==6.20.3"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            continue
    return total / TICK


@dataclass
class Peer:
    label: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    uploads: bool = True
    pep691: bool = True
    path: str = "/simple/"  # where its index is (a view's, devpi's: elsewhere)
    password: str = "bench"  # noqa: S105 - what twine sends; only devpi checks it

    @property
    def index(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def tree(self) -> list[int]:
        """The server's process and its children (nginx workers)."""
        pids = [self.process.pid]
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:  # the name in parentheses may hold spaces: fields follow its ")"
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except (OSError, IndexError):
                    continue
                if int(stat[1]) == self.process.pid:
                    pids.append(int(pid))
        return pids

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> float:
    """Seconds until ``url`` answers 200."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def ready(peer: Peer, timeout: float) -> tuple[Peer, float]:
    """The peer and the seconds it took to answer; stopped (never left running) if it did not."""
    try:
        return peer, wait_ready(peer.index, peer.process, timeout)
    except BaseException:
        peer.stop()
        raise


def start_skypi(folder: Path, work: Path, timeout: float = 300) -> tuple[Peer, float]:
    port = free_port()
    log = work / f"skypi-{port}.log"
    process = subprocess.Popen(
        [
            str(BIN / "skypi"),
            "serve",
            str(folder),
            "--port",
            str(port),
            "-a",
            ".",
            "--no-access-log",  # the peers run without one too: figures stay comparable
            "--log-level",
            "warning",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return ready(Peer("skypi", port, process, log), timeout)


def compile_bytecode() -> None:
    """Compile skypi and its environment's packages to bytecode, as ``pip install`` does for
    pypiserver's: without it (``uv sync`` compiles nothing, and ``PYTHONDONTWRITEBYTECODE``
    keeps an interpreter from saving what it compiled) every skypi start compiles its imports
    from source again (a restart of a 12,000-file folder: about 0.5 of its CPU-seconds), a
    cost no installed skypi pays and pypiserver did not pay here."""
    import sysconfig

    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            sysconfig.get_paths()["purelib"],
            str(Path(__file__).resolve().parents[1] / "functions" / "skypi"),
        ],
        check=False,  # a file that does not compile is compiled (and refused) at import
        stdout=subprocess.DEVNULL,
    )


def installed(work: Path, name: str, command: str, *requirements: str) -> Path | None:
    """``command`` of ``requirements`` installed from PyPI into an environment of its own
    under ``work`` (once); None, with a line saying why, if it cannot be installed."""
    venv = work / f"venv-{name}"
    binary = venv / "bin" / command
    if binary.exists():
        return binary
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                "--isolated",
                "--disable-pip-version-check",
                *requirements,
            ],
            check=True,
            timeout=300,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"skipping {name}: cannot install {' '.join(requirements)} ({exc})")
        return None
    return binary


def pypiserver_bin(work: Path) -> Path | None:
    return installed(work, "pypiserver", "pypi-server", PYPISERVER, "passlib")


def start_pypiserver(folder: Path, work: Path, timeout: float = 300) -> tuple[Peer, float] | None:
    """pypiserver's simple-dir backend: its cached-dir backend stalls for good here under
    8 keep-alive connections asking for varying projects (seen with wrk and httpx alike)."""
    binary = pypiserver_bin(work)
    if binary is None:
        return None
    port = free_port()
    log = work / f"pypiserver-{port}.log"
    process = subprocess.Popen(
        [
            str(binary),
            "run",
            "-p",
            str(port),
            "-i",
            "127.0.0.1",
            "-a",
            ".",
            "-P",
            ".",
            "--disable-fallback",
            "--backend",
            "simple-dir",
            str(folder),
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return ready(Peer("pypiserver", port, process, log, pep691=False), timeout)


def start_devpi(work: Path, mirror_url: str, timeout: float = 120) -> tuple[Peer, float] | None:
    """devpi-server with one mirror index, ``root/pub``, of ``mirror_url`` (no root/pypi:
    nothing reaches the internet): seconds until it answers."""
    started = _devpi(work, timeout)
    if started is None:
        return None
    peer, ready_s = started
    try:
        token = _devpi_login(peer, "root", "")  # no password on a fresh server
        auth = base64.b64encode(f"root:{token}".encode()).decode()
        created = httpx.put(
            f"http://127.0.0.1:{peer.port}/root/pub",
            json={"type": "mirror", "mirror_url": mirror_url},
            headers={"X-Devpi-Auth": auth, "Accept": "application/json"},
            timeout=30,
        )
        created.raise_for_status()
    except BaseException:
        peer.stop()
        raise
    peer.path = "/root/pub/+simple/"
    return peer, ready_s


DEVPI_INDEX = "/bench/dev/"  # the upload index: user ``bench`` (password ``bench``)


def start_devpi_stage(work: Path, timeout: float = 120) -> tuple[Peer, float] | None:
    """devpi-server with a user ``bench`` (password ``bench``, as twine sends it to every
    peer) and an index of uploads, ``bench/dev``."""
    started = _devpi(work, timeout)
    if started is None:
        return None
    peer, ready_s = started
    url = f"http://127.0.0.1:{peer.port}"
    try:
        httpx.put(f"{url}/bench", json={"password": "bench"}, timeout=30).raise_for_status()
        httpx.put(
            f"{url}{DEVPI_INDEX.rstrip('/')}",
            json={"type": "stage", "volatile": True},
            auth=("bench", "bench"),
            headers={"Accept": "application/json"},
            timeout=30,
        ).raise_for_status()
    except BaseException:
        peer.stop()
        raise
    # Its login token as twine's password, as devpi's own client uploads: a password is checked
    # with argon2 at each request (about 0.2 CPU-s here), a token is not.
    peer.path, peer.uploads = f"{DEVPI_INDEX}+simple/", True
    peer.password = _devpi_login(peer, "bench", "bench")
    return peer, ready_s


def _devpi(work: Path, timeout: float) -> tuple[Peer, float] | None:
    """devpi-server (from PyPI, in an environment of its own) on a fresh server folder."""
    binary = installed(work, "devpi", "devpi-server", DEVPI)
    if binary is None:
        return None
    serverdir = work / f"devpi-{time.monotonic_ns()}"
    init = binary.parent / "devpi-init"
    subprocess.run(
        [str(init), "--serverdir", str(serverdir), "--no-root-pypi"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = work / f"devpi-{port}.log"
    command = [str(binary), "--serverdir", str(serverdir), "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    peer = Peer("devpi", port, process, log, uploads=False, pep691=False)
    try:
        return peer, wait_ready(f"http://127.0.0.1:{port}/+api", process, timeout)
    except BaseException:
        peer.stop()
        raise


def _devpi_login(peer: Peer, user: str, password: str) -> str:
    """A devpi login token for ``user``: the password of its ``X-Devpi-Auth`` header, or of
    HTTP basic authentication."""
    login = httpx.post(
        f"http://127.0.0.1:{peer.port}/+login",
        json={"user": user, "password": password},
        timeout=30,
    )
    login.raise_for_status()
    return str(login.json()["result"]["password"])


NGINX_CONF = """
{user}
worker_processes 2;
pid {work}/nginx-{port}.pid;
error_log {log};
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  types {{ text/html html; application/octet-stream whl gz metadata; }}
  server {{
    listen 127.0.0.1:{port};
    location /simple/ {{ alias {state}/simple/; index index.html; }}
    location ~ ^/packages/(.+[.]metadata)$ {{ alias {state}/packages/$1; }}
    location /packages/ {{ alias {folder}/; }}
  }}
}}
"""


def nginx_bin() -> str | None:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "nginx-light"], capture_output=True)
        if Path("/usr/sbin/nginx").exists():
            return "/usr/sbin/nginx"
    print("skipping nginx: not installed (apt-get install nginx-light) and cannot install it")
    return None


def start_nginx(folder: Path, work: Path) -> tuple[Peer, float] | None:
    """skypi's stored HTML pages (and files) served as static files: what a CDN does."""
    binary = nginx_bin()
    if binary is None:
        return None
    port = free_port()
    log = work / f"nginx-{port}.error.log"
    conf = work / f"nginx-{port}.conf"
    conf.write_text(
        NGINX_CONF.format(
            # Started as root, nginx's workers would run as nobody, who may not read skypi's
            # private state folder: they run as its owner instead.
            user=f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else "",
            work=work,
            port=port,
            log=log,
            state=folder / ".skypi",
            folder=folder,
        )
    )
    process = subprocess.Popen(
        [binary, "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return ready(Peer("nginx-static", port, process, log, uploads=False, pep691=False), 30)


def wrk_bin() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True)
        return shutil.which("wrk")
    return None
