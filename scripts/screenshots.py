"""``make screenshots``: the README's pictures of the pages for people, taken in Debian's
Chromium from a real ``skypi serve`` over a small sample index (docs/images/*.png).

Run it after changing how the pages look; the tests never write these files.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.dists import metadata_text, wheel_bytes, wheel_name  # noqa: E402

OUT = ROOT / "docs" / "images"
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ABOUT = """License-Expression: MIT
Author-email: Ada Lovelace <ada@example.com>
Project-URL: Source, https://example.com/rocket-science
Project-URL: Changelog, https://example.com/rocket-science/changes
Classifier: Programming Language :: Python :: 3
Classifier: Topic :: Scientific/Engineering
Keywords: rockets,space
Requires-Python: >=3.10
Description-Content-Type: text/markdown

# Rocket Science

Launch things **safely**, from your own index.

```python
import rocket_science
rocket_science.launch()
```
"""


def _sample(folder: Path) -> None:
    (folder / "rocket-science").mkdir(parents=True)
    for version, summary in (("1.0", "Rockets, early"), ("1.1", "Rockets"), ("2.0", "")):
        head = metadata_text("Rocket_Science", version, summary=summary or "Rockets for everyone")
        metadata = head.rstrip("\n") + "\n" + ABOUT
        (folder / "rocket-science" / wheel_name("rocket_science", version)).write_bytes(
            wheel_bytes("Rocket_Science", version, metadata=metadata)
        )
    for name in ("billing-core", "acme-auth", "telemetry"):
        (folder / wheel_name(name, "0.4.1")).write_bytes(wheel_bytes(name, "0.4.1"))


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(folder: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(BIN / "skypi"), "serve", str(folder), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("skypi serve did not start")


def main() -> int:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        print("no Chromium: apt-get install -y chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "packages"
        _sample(folder)
        token = subprocess.run(
            [str(BIN / "skypi"), "token", "create", str(folder), "--scope", "admin"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        port = _port()
        server = _serve(folder, port)
        url = f"http://127.0.0.1:{port}"
        try:
            httpx.post(
                f"{url}/api/projects/rocket-science/yank",
                json={"version": "1.1", "reason": "the 1.1 engines explode"},
                auth=("__token__", token),
            ).raise_for_status()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
                page.goto(f"{url}/")
                page.screenshot(path=str(OUT / "landing.png"))
                page.goto(f"{url}/project/rocket-science/")
                page.screenshot(path=str(OUT / "project.png"))
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
    print(f"wrote {OUT / 'landing.png'} and {OUT / 'project.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
