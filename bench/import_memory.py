"""Peak memory of ``skypi import`` as the source folder grows (docs/operations.md).

Generates N small valid wheels (N/10 projects of 10 versions each), imports them into a fresh folder
index in a child process, and reports the child's peak RSS and wall time; optionally into a
bucket on an in-process moto server (``--s3``, copy only: indexing there is measured by
``bench/s3cost.py``).

    .venv/bin/python bench/import_memory.py [--sizes 1000 2500 5000] [--s3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dists import wheel_bytes, wheel_name  # noqa: E402


def corpus(folder: Path, count: int) -> None:
    for i in range(count):
        project, version = f"bench-{i // 10:04d}", f"1.{i % 10}"
        sub = folder / project[:8]
        sub.mkdir(exist_ok=True)
        (sub / wheel_name(project, version)).write_bytes(wheel_bytes(project, version))


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one child process: its VmHWM, read from /proc until it
    exits (getrusage would also count the pages it shared with this process before exec)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kib = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(process.stderr.read().decode() if process.stderr else "failed")
    return peak_kib / 1024, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2500, 5000])
    parser.add_argument("--s3", action="store_true", help="also import into moto S3 (copy only)")
    options = parser.parse_args()
    skypi = str(Path(sys.executable).with_name("skypi"))
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    endpoint = None
    if options.s3:
        from skypi.local.emulator import start_moto

        _server, endpoint = start_moto()
    print(f"{'files':>6} {'target':>7} {'peak RSS MiB':>13} {'seconds':>8}")
    for count in options.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp, "source")
            source.mkdir()
            corpus(source, count)
            rss, seconds = measure(
                [skypi, "import", str(source), "--to", str(Path(tmp, "idx"))], env
            )
            print(f"{count:>6} {'folder':>7} {rss:>13.1f} {seconds:>8.1f}", flush=True)
            if endpoint:
                import boto3

                bucket = f"bench-{count}"
                boto3.client(
                    "s3",
                    endpoint_url=endpoint,
                    region_name="us-east-1",
                    aws_access_key_id="x",
                    aws_secret_access_key="x",  # noqa: S106 - moto
                ).create_bucket(Bucket=bucket)
                s3_env = dict(
                    env,
                    AWS_ENDPOINT_URL=endpoint,
                    AWS_ACCESS_KEY_ID="x",
                    AWS_SECRET_ACCESS_KEY="x",  # noqa: S106 - moto
                    AWS_DEFAULT_REGION="us-east-1",
                )
                rss, seconds = measure(
                    [skypi, "import", str(source), "--bucket", bucket, "--no-index"], s3_env
                )
                print(f"{count:>6} {'s3':>7} {rss:>13.1f} {seconds:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
