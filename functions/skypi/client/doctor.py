"""``skypi doctor URL``: try every path of a running index, end to end, and say whether it works.

Run after ``cdk deploy`` (and in CI against ``skypi dev``). It publishes a throw-away project,
``skypi-doctor``, at two fresh versions: one through the upload API (``/legacy/``, as twine
sends it) and one through a presigned upload (as ``skypi publish`` sends it). Then, through
the read URL (the CDN), it checks content negotiation, compressed pages, PEP 658 ``.metadata``,
the file's hash, that private reads refuse a missing (401) or wrong (403) token, and installs
the project with pip. Last it yanks one version, deletes both files and waits until the read
URL stops serving them. Each step is printed with its time; the verdict is the exit status.

The project's page stays behind, empty (a project that loses its last file keeps an empty page
and leaves the root listing), so repeated runs leave one empty page, never a file.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from skypi.client.admin import AdminClient, AdminError
from skypi.client.publish import PublishClient, PublishError, file_sha256
from skypi.core.negotiate import V1_HTML, V1_JSON

PROJECT = "skypi-doctor"
MODULE = "skypi_doctor"


class StepFailed(Exception):
    """A check did not hold; its message says what was seen."""


class Skipped(Exception):
    """A check does not apply to this index (said why); it neither passes nor fails."""


@dataclass(frozen=True)
class Step:
    name: str
    status: str  # "ok", "fail" or "skip"
    seconds: float
    detail: str = ""


@dataclass
class Diagnosis:
    steps: list[Step] = field(default_factory=list)

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status == "fail"]

    @property
    def ok(self) -> bool:
        return bool(self.steps) and not self.failed


def with_record(dist_info: str, files: dict[str, bytes]) -> dict[str, bytes]:
    """A wheel's ``files`` followed by the ``RECORD`` that lists them: each path with its
    urlsafe-base64 SHA-256 and size, and the RECORD itself without either (PEP 376, 427).

    >>> with_record("p-1.dist-info", {"p/__init__.py": b""})["p-1.dist-info/RECORD"].decode()
    'p/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\\np-1.dist-info/RECORD,,\\n'
    """
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    return {**files, f"{dist_info}/RECORD": ("\n".join(record) + "\n").encode()}


def build_wheel(folder: Path, version: str) -> Path:
    """A minimal, valid pure-Python wheel of :data:`PROJECT` (METADATA, WHEEL, RECORD)."""
    dist_info = f"{MODULE}-{version}.dist-info"
    files = {
        f"{MODULE}/__init__.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {version}\n"
            "Summary: A throw-away package `skypi doctor` publishes and deletes.\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: skypi-doctor\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    path = folder / f"{MODULE}-{version}-py3-none-any.whl"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in with_record(dist_info, files).items():
            archive.writestr(name, data)
    path.write_bytes(buffer.getvalue())
    return path


def _with_credentials(url: str, token: str | None) -> str:
    """``url`` with ``__token__:<token>@`` in it, the way pip takes index credentials."""
    if not token:
        return url
    parts = urlsplit(url)
    netloc = f"__token__:{token}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _pip() -> list[str] | None:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    found = shutil.which("pip3") or shutil.which("pip")
    return [found] if found else None


class Doctor:
    """The checks, in order; ``run`` reports each step as it ends."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        read_url: str | None = None,
        wait: float = 60.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.read_url = (read_url or url).rstrip("/")
        self.token = token
        self.wait = wait
        self.http = http or httpx.Client(timeout=httpx.Timeout(30, read=120))
        stamp = f"{int(time.time())}{secrets.randbelow(1000):03d}"
        self.versions = (f"0.{stamp}.1", f"0.{stamp}.2")  # unique to this run
        self.private: bool | None = None
        self.files: dict[str, dict[str, Any]] = {}  # filename -> its entry on the JSON page
        self.verdict = Diagnosis()

    # -- running ------------------------------------------------------------------------

    def run(self, report: Callable[[Step], object] = lambda step: None) -> Diagnosis:
        with tempfile.TemporaryDirectory(prefix="skypi-doctor-") as tmp:
            self.tmp = Path(tmp)
            wheels = [build_wheel(self.tmp, v) for v in self.versions]
            checks: list[tuple[str, Callable[[], str]]] = [
                ("the API answers /health", self._health),
                ("upload through the API (/legacy/, as twine)", lambda: self._legacy(wheels[0])),
                ("upload through a presigned URL (skypi publish)", lambda: self._direct(wheels[1])),
                ("private reads refuse a missing or wrong token", self._private),
                ("the JSON page (PEP 691) lists both files", self._json_page),
                ("the HTML pages (PEP 503, v1+html) list both files", self._html_pages),
                ("pages come gzip-compressed when asked", self._compressed),
                ("each file and its .metadata match the page's hashes", self._files),
                ("pip installs it through the read URL", self._pip_install),
                ("yank: the page marks the release yanked", self._yank),
            ]
            uploads, reads = checks[:3], checks[3:]
            for name, check in uploads:
                report(self._step(name, check))
            unpublished = any(s.status == "fail" for s in self.verdict.steps)
            for name, check in reads:
                report(self._step(name, check, skip=unpublished))
            report(self._step("delete both files through the API", self._delete))
            report(self._step("the read URL stops serving them", self._gone))
        return self.verdict

    def _step(self, name: str, check: Callable[[], str], *, skip: bool = False) -> Step:
        started = time.perf_counter()
        if skip:
            step = Step(name, "skip", 0.0, "an upload failed")
        else:
            try:
                step = Step(name, "ok", 0.0, check())
            except Skipped as why:
                step = Step(name, "skip", 0.0, str(why))
            except (StepFailed, PublishError) as failure:
                step = Step(name, "fail", 0.0, str(failure))
            except httpx.HTTPError as exc:
                step = Step(name, "fail", 0.0, f"{type(exc).__name__}: {exc}")
            except (ValueError, KeyError, TypeError, OSError, subprocess.SubprocessError) as exc:
                # an answer that is not what an index sends (not JSON, a field missing)
                step = Step(name, "fail", 0.0, f"unexpected answer: {type(exc).__name__}: {exc}")
        step = Step(step.name, step.status, time.perf_counter() - started, step.detail)
        self.verdict.steps.append(step)
        return step

    # -- helpers ------------------------------------------------------------------------

    def _auth(self, token: str | None = None) -> Any:
        token = token if token is not None else self.token
        return httpx.BasicAuth("__token__", token) if token else None

    def _read(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        auth = kw.pop("auth", self._auth() if self.private is not False else None)
        return self.http.get(
            urljoin(self.read_url + "/", path.lstrip("/")), headers=headers, auth=auth, **kw
        )

    def _page(self, accept: str) -> httpx.Response:
        response = self._read(f"simple/{PROJECT}/", {"Accept": accept})
        if response.status_code != 200:
            raise StepFailed(f"GET /simple/{PROJECT}/ answered {response.status_code}")
        return response

    def _expect_listed(self, text: str, what: str) -> None:
        missing = [f for f in self.files if f not in text]
        if missing:
            raise StepFailed(f"{what} does not list {', '.join(missing)}")

    # -- the checks ---------------------------------------------------------------------

    def _health(self) -> str:
        response = self.http.get(f"{self.url}/health")
        if response.status_code != 200:
            raise StepFailed(f"GET /health answered {response.status_code}")
        return f"{self.url}/health answered 200"

    def _publisher(self) -> PublishClient:
        if not self.token:
            raise StepFailed("an upload token with the admin scope is needed: --token")
        return PublishClient(self.url, self.token, http=self.http, state_dir=self.tmp / "state")

    def _legacy(self, wheel: Path) -> str:
        result = self._publisher().upload_legacy(wheel, wheel.stat().st_size, file_sha256(wheel))
        if result.status != "published":
            raise StepFailed(f"{wheel.name}: {result.status}: {result.message}")
        self.files[wheel.name] = {}
        return f"{wheel.name} published"

    def _direct(self, wheel: Path) -> str:
        result = self._publisher().publish(wheel)
        if result.status != "published":
            raise StepFailed(f"{wheel.name}: {result.status}: {result.message}")
        self.files[wheel.name] = {}
        if result.message == "through /legacy/":
            raise Skipped(
                f"{wheel.name} went through /legacy/: this index takes no presigned uploads"
            )
        return f"{wheel.name} published straight to storage"

    def _private(self) -> str:
        anonymous = self._read(f"simple/{PROJECT}/", auth=None)
        if anonymous.status_code == 200:
            self.private = False
            raise Skipped("this index is public: anyone with the URL can read it")
        if anonymous.status_code != 401:
            raise StepFailed(f"without a token: {anonymous.status_code}, not 401")
        self.private = True
        wrong = self._read(f"simple/{PROJECT}/", auth=self._auth(f"skypi_{secrets.token_hex(16)}"))
        if wrong.status_code != 403:
            raise StepFailed(f"with a wrong token: {wrong.status_code}, not 403")
        return "no token: 401, a wrong token: 403"

    def _json_page(self) -> str:
        """The JSON page lists both files: at once on a folder; through CloudFront, once the
        page's invalidation (sent as the files were listed) has taken effect, so the page is
        read again for up to ``wait`` seconds, as the deletions are at the end."""
        deadline = time.monotonic() + self.wait
        while True:
            response = self._page(V1_JSON)
            if response.headers.get("content-type") != V1_JSON:
                raise StepFailed(f"Content-Type {response.headers.get('content-type')!r}")
            entries = {f["filename"]: f for f in response.json()["files"]}
            if set(self.files) <= entries.keys() or time.monotonic() > deadline:
                break
            time.sleep(1)
        self._expect_listed(" ".join(entries), "the JSON page")
        for name in self.files:
            self.files[name] = entries[name]
        return f"{len(self.files)} files, Content-Type {V1_JSON}"

    def _html_pages(self) -> str:
        for accept, expected in (("text/html", "text/html"), (V1_HTML, V1_HTML)):
            response = self._page(accept)
            shown = response.headers.get("content-type", "")
            if shown.split(";")[0] != expected:
                raise StepFailed(f"Accept: {accept} got Content-Type {shown!r}")
            self._expect_listed(response.text, f"the {expected} page")
        return "text/html and application/vnd.pypi.simple.v1+html"

    def _compressed(self) -> str:
        with self.http.stream(
            "GET",
            urljoin(self.read_url + "/", f"simple/{PROJECT}/"),
            headers={"Accept": V1_JSON, "Accept-Encoding": "gzip"},
            auth=self._auth() if self.private is not False else None,
        ) as response:
            raw = b"".join(response.iter_raw())
            encoding = response.headers.get("content-encoding")
        if response.status_code != 200 or encoding != "gzip":
            raise StepFailed(f"{response.status_code}, Content-Encoding {encoding!r}")
        return f"JSON page: {len(raw):,} bytes on the wire, gzip"

    def _files(self) -> str:
        base = urljoin(self.read_url + "/", f"simple/{PROJECT}/")
        for name, entry in self.files.items():
            if not entry:
                raise StepFailed(f"{name} is not on the JSON page")
            url = urljoin(base, entry["url"])
            data = self._read(url).raise_for_status().content
            if hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
                raise StepFailed(f"{name}: the bytes served do not match the page's sha256")
            metadata = entry.get("core-metadata") or entry.get("data-dist-info-metadata")
            if not isinstance(metadata, dict):
                raise StepFailed(f"{name}: the page offers no .metadata (PEP 658)")
            meta = self._read(url + ".metadata").raise_for_status().content
            if hashlib.sha256(meta).hexdigest() != metadata["sha256"]:
                raise StepFailed(f"{name}.metadata does not match the page's hash")
        return f"{len(self.files)} files and their .metadata, sha256 verified"

    def _pip_install(self) -> str:
        pip = _pip()
        if pip is None:
            raise Skipped("no pip here")
        index = _with_credentials(f"{self.read_url}/simple/", self.token if self.private else None)
        target = self.tmp / "installed"
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHONPATH"))
        } | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        latest = self.versions[1]
        result = subprocess.run(
            [
                *pip,
                "install",
                "--no-cache-dir",
                "--no-input",
                "--no-deps",
                "--index-url",
                index,
                "--target",
                str(target),
                f"{PROJECT}=={latest}",
            ],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise StepFailed("pip failed: " + " | ".join(tail).replace(self.token or "\0", "***"))
        installed = (target / MODULE / "__init__.py").read_text()
        if latest not in installed:
            raise StepFailed(f"pip installed something else: {installed.strip()!r}")
        return f"{PROJECT}=={latest} installed"

    @contextmanager
    def _admin(self, action: str) -> Iterator[AdminClient]:
        """The admin API; a refusal fails the step, saying what was refused."""
        try:
            yield AdminClient(self.url, self.token, http=self.http)
        except AdminError as exc:
            status = f"{exc.status} " if exc.status else ""
            raise StepFailed(f"{action} through the admin API: {status}{exc}") from None

    def _yank(self) -> str:
        version, reason = self.versions[0], "skypi doctor checks yanking"
        with self._admin(f"yank {version}") as admin:
            admin.yank(PROJECT, version=version, reason=reason)
        entries = self._page(V1_JSON).json()["files"]
        yanked = {f["filename"]: f.get("yanked") for f in entries}
        wheel = f"{MODULE}-{version}-py3-none-any.whl"
        if yanked.get(wheel) != reason:
            raise StepFailed(f"{wheel} shows yanked={yanked.get(wheel)!r}")
        return f"{version} yanked with its reason"

    def _delete(self) -> str:
        if not self.files:
            raise Skipped("nothing was published")
        for name in self.files:
            with self._admin(f"delete {name}") as admin:
                admin.delete(PROJECT, name)
        return f"{len(self.files)} files deleted"

    def _gone(self) -> str:
        if not self.files:
            raise Skipped("nothing was published")
        base = urljoin(self.read_url + "/", f"simple/{PROJECT}/")
        urls = [urljoin(base, e["url"]) for e in self.files.values() if e]
        urls += [u + ".metadata" for u in urls]
        deadline = time.monotonic() + self.wait
        while True:
            listed = [f["filename"] for f in self._page(V1_JSON).json()["files"]]
            served = [u for u in urls if self._read(u).status_code == 200]
            if not listed and not served:
                return "the page lists nothing, files and .metadata answer 404 or 403"
            if time.monotonic() > deadline:
                still = [*listed, *(urlsplit(u).path.rsplit("/", 1)[-1] for u in served)]
                raise StepFailed(f"still served after {self.wait:.0f} s: {', '.join(still)}")
            time.sleep(1)


__all__ = ["Diagnosis", "Doctor", "Step", "build_wheel", "with_record"]
