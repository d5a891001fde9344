"""A deterministic corpus of valid wheels and sdists (the benchmarks' input).

N projects x 3 versions x (wheel + sdist). ``pkg-00001`` -> ... -> ``pkg-00010`` is a dependency
chain; the newest version of every 10th project needs Python >= 3.99, so resolving the chain
must fall back a version (and an index without ``data-requires-python`` costs a download).
Same arguments, same bytes.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.dists import sdist_bytes, sdist_name, wheel_bytes, wheel_name

VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
CHAIN = 10


def project(i: int, prefix: str = "pkg") -> str:
    return f"{prefix}-{i:05d}"


def requirements(i: int, projects: int, rng: random.Random) -> tuple[str, ...]:
    if i < CHAIN:
        return (project(i + 1),)
    if i > CHAIN and rng.random() < 0.3 and i + 2 <= projects:
        return tuple(sorted({project(rng.randint(i + 1, projects)) for _ in range(2)}))
    return ()


def build(folder: Path, projects: int, *, prefix: str = "pkg", versions: int = 3) -> list[Path]:
    """Write the corpus into ``folder/<project>/``; returns the files written."""
    rng = random.Random(projects)
    written = []
    for i in range(1, projects + 1):
        name = project(i, prefix)
        requires = requirements(i, projects, rng) if prefix == "pkg" else ()
        directory = folder / name
        directory.mkdir(parents=True, exist_ok=True)
        for n, version in enumerate(VERSIONS[:versions]):
            newest = n == versions - 1
            pin = ">=3.99" if newest and i % 10 == 0 else ">=3.8"
            wheel = directory / wheel_name(name, version)
            wheel.write_bytes(wheel_bytes(name, version, requires_python=pin, requires=requires))
            sdist = directory / sdist_name(name, version)
            sdist.write_bytes(sdist_bytes(name, version, requires_python=pin))
            written += [wheel, sdist]
    return written
