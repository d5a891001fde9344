"""Every case of a view's policy as a table, run by real clients (pip, uv, poetry, started as
processes) on either path: a folder served by ``skypi serve`` (tests/e2e/test_view_cases.py)
or the AWS path, CloudFront modelled from the synthesized template in front of the moto bucket
and the view Lambda's handler (tests/aws/test_view_cases.py). Each case also asks
``skypi view explain`` why, and checks that its output names the verdict and the reason.

A path gives a :class:`World`: the index's URL for each view, a way to publish a private name
and to run the ``skypi`` CLI on that index. The upstream is a static PEP 691 index on loopback
(tests/upstream.py) with every project the table needs; no test reaches the internet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin

import httpx

from tests.dists import wheel_name
from tests.e2e.conftest import pip, run, uv
from tests.upstream import StaticUpstream

V1_JSON = "application/vnd.pypi.simple.v1+json"
NOW = datetime.now(UTC)
DAY = timedelta(days=1)
PIN = (NOW - 10 * DAY).date().isoformat()  # the time-pinned form: as it was 10 days ago
OSV_MAL = {
    "id": "MAL-2026-4242",
    "summary": "Malicious code in mal-pkg (PyPI)",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "mal-pkg"}, "versions": ["1.0"]}],
}


class World(Protocol):
    """One path's index with the views of :func:`policies` and a private ``corp-lib`` 1.0."""

    upstream: StaticUpstream  # every view's upstream but ``flaky``'s
    flaky: StaticUpstream
    tmp: Path
    credentials: tuple[str, str]  # a read token, as pip's URL carries it
    poetry: Path  # where the poetry tool's executable is

    def base(self) -> str:
        """The index's address (``http://127.0.0.1:PORT``), without credentials."""

    def get(self, path: str, *, accept: str = V1_JSON, auth: bool = True) -> httpx.Response:
        """A read of ``path`` (with the read token), through what the clients use."""

    def publish(self, name: str, version: str) -> None:
        """A private upload of ``name``, indexed before this returns."""

    def cli(self, *args: str) -> str:
        """``skypi ARGS`` on this index (stdout and stderr), whatever its exit status."""

    def location(self) -> list[str]:
        """The options that point ``skypi view ...`` at this index (``--dir``/``--bucket``)."""

    def reserve(self, namespace: str) -> None:
        """``skypi namespace add`` on this index."""

    def cached(self, view: str, project: str, filename: str) -> bool:
        """Whether the view keeps its own copy of an upstream file."""

    def start(self) -> None:
        """Serve the index to the clients."""

    def stop(self) -> None:
        """Stop serving (if it started)."""


class Reads:
    """:meth:`World.get` for a world that gives its :meth:`World.base` and credentials."""

    credentials: tuple[str, str]

    def base(self) -> str:
        raise NotImplementedError

    def get(self, path: str, *, accept: str = V1_JSON, auth: bool = True) -> httpx.Response:
        return httpx.get(
            self.base() + path,
            headers={"Accept": accept},
            auth=self.credentials if auth else None,
            timeout=60,
        )


@contextmanager
def upstreams() -> Iterator[tuple[StaticUpstream, StaticUpstream]]:
    """The views' upstream and ``flaky``'s, with the table's projects, for the ``with``."""
    upstream, flaky = StaticUpstream().start(), StaticUpstream().start()
    try:
        populate(upstream, flaky)
        yield upstream, flaky
    finally:
        upstream.stop()
        flaky.stop()


@contextmanager
def served(world: World) -> Iterator[None]:
    """The views added, the OSV data imported and ``corp-lib`` 1.0 published; then the index
    served for the ``with``."""
    try:
        configure(world)
        world.publish("corp-lib", "1.0")
        world.start()
        yield
    finally:
        world.stop()


def populate(upstream: StaticUpstream, flaky: StaticUpstream) -> None:
    """Upstream's projects, each for a case of the table (ages in days before now)."""
    old = NOW - 30 * DAY
    for name, version, when in (
        ("corp-lib", "99.0", old),  # the hostile higher version of a private name
        ("inhouse-tools", "9.0", old),  # under a namespace this index reserves
        ("taken", "99.0", old),  # served from upstream, then published here
        ("demo", "1.0", old),
        ("demo", "2.0", NOW - DAY),  # in the cooldown
        ("untimed", "1.0", old),
        ("untimed", "2.0", None),
        ("hotfix", "1.0", old),
        ("hotfix", "1.1", NOW - DAY),  # in the cooldown, but its exception lifts it
        ("lapsed", "1.0", old),
        ("lapsed", "1.1", NOW - DAY),  # its exception has expired
        ("evil", "1.0", old),
        ("shaky", "1.0", old),
        ("shaky", "2.0", old),
        ("pinned-lib", "1.0", old),
        ("pinned-lib", "2.0", old),
        ("yanky", "0.9", old),
        ("quar", "1.0", old),
        ("mal-pkg", "1.0", old),
        ("moved", "1.0", old),
    ):
        upstream.add_wheel(name, version, when)
    upstream.add_wheel("yanky", "1.0", old, yanked="broken build")
    upstream.add_wheel("tampered", "1.0", old, served=b"PK-not-the-wheel-upstream-hashed")
    upstream.pages["moved"]["files"][0]["url"] = f"http://127.0.0.2:9/{wheel_name('moved', '1.0')}"
    upstream.hanging.add("sluggish")  # a page upstream never sends: the view's wait ends
    flaky.add_wheel("steady", "1.0", old)
    flaky.add_wheel("unseen", "1.0", old)


def policies(upstream: str, flaky: str) -> dict[str, dict[str, object]]:
    """The views: ``cases`` (cooldown, deny-list, exceptions), ``strict`` (an allow-list),
    ``open`` (no cooldown: its pinned form), ``direct`` (links to upstream's files) and
    ``flaky`` (over an upstream that goes down)."""
    when = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "cases": {
            "upstream": upstream,
            "cooldown-days": 7,
            "deny": ["evil", "shaky>=2"],
            "exception": [
                {
                    "project": "hotfix",
                    "reason": "the fix for the outage is needed now",
                    "expires": (NOW + 30 * DAY).strftime(when),
                    "cooldown-days": 0,
                },
                {
                    "project": "lapsed",
                    "reason": "a fix that was needed last month",
                    "expires": (NOW - DAY).strftime(when),
                    "cooldown-days": 0,
                },
            ],
        },
        "strict": {"upstream": upstream, "allow": ["pinned-lib<2", "corp-lib"]},
        "open": {"upstream": upstream},
        "direct": {"upstream": upstream, "cooldown-days": 7, "files": "link"},
        "flaky": {"upstream": flaky, "cooldown-days": 7},
    }


def configure(world: World) -> None:
    """The views of :func:`policies` and the OSV data, through ``skypi view add|osv``."""
    for name, policy in policies(world.upstream.url, world.flaky.url).items():
        path = world.tmp / f"{name}.json"
        path.write_text(json.dumps(policy))
        out = world.cli("view", "add", name, "--policy", str(path), *world.location())
        assert f"Added view {name}" in out, out
    osv = world.tmp / "mal.json"
    osv.write_text(json.dumps(OSV_MAL))
    assert "1 malicious" in world.cli("view", "osv", str(osv), *world.location())


def index_url(world: World, view: str, *, auth: bool = True) -> str:
    """``/view/<view>/simple/`` with the read token in the URL (pip's and uv's convention)."""
    host = world.base().removeprefix("http://")
    user, token = world.credentials
    return (
        f"http://{user}:{token}@{host}/view/{view}/simple/"
        if auth
        else f"http://{host}/view/{view}/simple/"
    )


Resolved = tuple[str | None, str]  # the version a client resolved (None: none), what it said


def _version(filename: str) -> str:
    return filename.split("-")[1]


def resolve_with_pip(world: World, index: str, requirement: str, out: Path) -> Resolved:
    """The version pip downloads (None: it finds none, or cannot fetch it)."""
    got = pip("download", "--no-deps", "--no-cache-dir", "-d", str(out), "--index-url", index,
              requirement, env=client_env(world), check=False)  # fmt: skip
    if got.returncode != 0:
        return None, got.stderr
    [downloaded] = [p.name for p in out.iterdir()]
    return _version(downloaded), got.stderr


def resolve_with_uv(world: World, index: str, requirement: str, out: Path) -> Resolved:
    """The version uv installs (None: it resolves nothing)."""
    got = uv("pip", "install", "--no-deps", "--target", str(out), "--index-url", index,
             requirement, env=client_env(world), check=False)  # fmt: skip
    if got.returncode != 0:
        return None, got.stderr
    [record] = list(out.glob("*.dist-info"))
    return record.name.removesuffix(".dist-info").split("-")[1], got.stderr


def resolve_with_poetry(world: World, index: str, requirement: str, out: Path) -> Resolved:
    """The version ``poetry install`` installs into the project's environment (the token as
    poetry keeps it: http-basic for the source, here from its environment variables)."""
    poetry = world.poetry / "poetry"
    out.mkdir()
    source = re.sub(r"//[^@]*@", "//", index)
    (out / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
        f'dependencies = ["{requirement}"]\n\n[tool.poetry]\npackage-mode = false\n\n'
        f'[[tool.poetry.source]]\nname = "view"\nurl = "{source}"\npriority = "primary"\n'
    )
    user, token = world.credentials
    env = client_env(world) | {
        "PATH": f"{poetry.parent}:{client_env(world)['PATH']}",
        "POETRY_CONFIG_DIR": str(out / "config"),
        "POETRY_CACHE_DIR": str(out / "cache"),
        "POETRY_DATA_DIR": str(out / "data"),
        "POETRY_KEYRING_ENABLED": "false",
        "POETRY_VIRTUALENVS_IN_PROJECT": "true",
        "POETRY_HTTP_BASIC_VIEW_USERNAME": user,
        "POETRY_HTTP_BASIC_VIEW_PASSWORD": token,
    }
    got = run([str(poetry), "install", "--no-interaction", "-C", str(out)], env, check=False)
    if got.returncode != 0:
        return None, got.stdout + got.stderr
    project = requirement.split("=")[0].split("<")[0].split(">")[0]
    lock = (out / "poetry.lock").read_text()
    found = re.search(rf'name = "{project}"\nversion = "([^"]+)"', lock)
    assert found, lock
    installed = list(
        (out / ".venv").glob(f"lib/python*/site-packages/{project.replace('-', '_')}*.dist-info")
    )
    assert [p.name.removesuffix(".dist-info").split("-")[1] for p in installed] == [found.group(1)]
    return found.group(1), got.stdout


def client_env(world: World) -> dict[str, str]:
    from tests.e2e.conftest import client_env as clean

    return clean(world.tmp)


CLIENTS: dict[str, Callable[[World, str, str, Path], Resolved]] = {
    "pip": resolve_with_pip,
    "uv": resolve_with_uv,
    "poetry": resolve_with_poetry,
}


def _cache(world: World, view: str, project: str) -> list[str]:
    """Read ``project``'s page and each listed file (its PEP 658 metadata first, as pip and
    uv do) through the view."""
    page = world.get(f"/view/{view}/simple/{project}/")
    assert page.status_code == 200, page.text
    listed = [f["filename"] for f in page.json()["files"]]
    for entry in page.json()["files"]:
        link = urljoin(f"/view/{view}/simple/{project}/", entry["url"]).split("#")[0]
        for suffix in (".metadata", "") if entry.get("core-metadata") else ("",):
            assert world.get(link + suffix, accept="*/*").status_code == 200
    return listed


def take_over(world: World) -> None:
    """``taken`` 99.0 served (page and file) from upstream, then published here as 1.0."""
    assert _cache(world, "cases", "taken") == [wheel_name("taken", "99.0")]
    world.publish("taken", "1.0")


def quarantine_cached(world: World) -> None:
    """``quar`` 1.0 served and its file cached; then upstream quarantines the project and the
    view asks upstream again (``skypi view refresh``)."""
    assert _cache(world, "cases", "quar") == [wheel_name("quar", "1.0")]
    assert world.cached("cases", "quar", wheel_name("quar", "1.0"))
    world.upstream.set_status("quar", "quarantined", "malware found")
    assert "quar: " in world.cli("view", "refresh", "cases", "quar", *world.location())


def upstream_down(world: World) -> None:
    """``steady`` served by ``flaky`` (its page and files stored), then its upstream stops
    (once: both cases of a stopped upstream begin with it)."""
    if "/simple/steady/" in world.flaky.requests:
        return
    assert _cache(world, "flaky", "steady") == [wheel_name("steady", "1.0")]
    world.flaky.stop()


def answers(path: str, status: int, words: str, *, auth: bool = True) -> Callable[[World], None]:
    """After the client: what the view answered it (pip and uv print no status for a page)."""

    def check(world: World) -> None:
        answer = world.get(path, auth=auth)
        assert answer.status_code == status, (answer.status_code, answer.text)
        assert words in answer.text
        assert int(answer.headers["content-length"]) == len(answer.content)

    return check


def served_from_the_index(world: World) -> None:
    """After the client: the file is the view's own copy, and a second download asks upstream
    nothing."""
    assert world.cached("cases", "demo", wheel_name("demo", "1.0"))
    asked = list(world.upstream.requests)
    again = resolve_with_pip(world, index_url(world, "cases"), "demo", world.tmp / "again")
    assert again[0] == "1.0"
    assert world.upstream.requests == asked


def linked_to_upstream(world: World) -> None:
    """After the client: the file came from upstream's URL, and the view keeps no copy."""
    assert f"/files/{wheel_name('demo', '1.0')}" in world.upstream.requests
    assert not world.cached("direct", "demo", wheel_name("demo", "1.0"))


def refused_copy(world: World) -> None:
    """Nothing kept, and the view's page leaves the file out from then on."""
    assert not world.cached("cases", "tampered", wheel_name("tampered", "1.0"))
    assert world.get("/view/cases/simple/tampered/").json()["files"] == []


@dataclass(frozen=True)
class Case:
    """One row: through ``view`` (with the read token unless ``anonymous``), ``client``
    resolves ``requirement`` to ``want`` (None: to nothing); ``skypi view explain VIEW
    EXPLAIN...`` prints each of ``says``."""

    id: str
    view: str
    requirement: str
    want: str | None
    explain: tuple[str, ...] = ()
    says: tuple[str, ...] = ()
    client: str = "pip"
    prepare: Callable[[World], None] | None = None
    check: Callable[[World], None] | None = None
    anonymous: bool = False


CASES = (
    Case(
        "private-name-wins", "cases", "corp-lib", "1.0",
        ("corp-lib",), ("private", "published in this index"),
    ),
    Case("private-name-wins-uv", "cases", "corp-lib", "1.0", ("corp-lib",), ("private",), "uv"),
    Case(
        "private-name-wins-poetry", "cases", "corp-lib", "1.0",
        ("corp-lib",), ("private",), "poetry",
    ),
    Case(
        "reserved-namespace", "cases", "inhouse-tools", None,
        ("inhouse-tools",), ("reserved", "namespace 'inhouse'"),
        prepare=lambda world: world.reserve("inhouse"),
    ),
    Case(
        "takeover-of-a-cached-name", "cases", "taken", "1.0", ("taken",), ("private",),
        prepare=take_over,
    ),
    Case(
        "cooldown", "cases", "demo", "1.0", ("demo", "2.0"), ("blocked", "cooldown", "listed from"),
        check=served_from_the_index,
    ),
    Case("cooldown-uv", "cases", "demo", "1.0", ("demo",), ("cooldown",), "uv"),
    Case("cooldown-poetry", "cases", "demo", "1.0", ("demo",), ("cooldown",), "poetry"),
    Case(
        "untimed-not-listed", "cases", "untimed", "1.0",
        ("untimed", "2.0"), ("untimed", "no upload time"),
    ),
    Case(
        "exception-lifts-cooldown", "cases", "hotfix", "1.1", ("hotfix", "1.1"),
        ("listed", "cooldown exception until", "the fix for the outage is needed now"),
    ),
    Case(
        "exception-expired", "cases", "lapsed", "1.0", ("lapsed", "1.1"),
        ("blocked", "cooldown", "its exception expired", "a fix that was needed last month"),
    ),
    Case("deny-list-project", "cases", "evil", None, ("evil",), ("deny-list", "denied by 'evil'")),
    Case(
        "deny-list-versions", "cases", "shaky", "1.0",
        ("shaky", "2.0"), ("deny-list", "denied by 'shaky>=2'"),
    ),
    Case(
        "allow-list-versions", "strict", "pinned-lib", "1.0",
        ("pinned-lib", "2.0"), ("not-allowed", "not on the allow-list"),
    ),
    Case("allow-list-others", "strict", "demo", None, ("demo",), ("not on the allow-list",)),
    Case("yank-kept", "cases", "yanky", "0.9", ("yanky", "1.0"), ("yanked", "broken build")),
    Case("yank-kept-exact-pin", "cases", "yanky==1.0", "1.0", ("yanky", "1.0"), ("yanked",)),
    Case(
        "quarantine-withholds-cached", "cases", "quar", None, ("quar",), ("status", "quarantined"),
        prepare=quarantine_cached,
    ),
    Case("osv-malware", "cases", "mal-pkg", None, ("mal-pkg",), ("malware: MAL-2026-4242",)),
    Case(
        "time-pin", f"open@{PIN}", "demo", "1.0",
        ("demo", "2.0", "--at", PIN), ("pinned", "after the pin"),
    ),
    Case("no-pin-no-cooldown", "open", "demo", "2.0", ("demo", "2.0"), ("listed",)),
    Case(
        "hash-mismatch-refused", "cases", "tampered", None,
        ("tampered",), ("mismatch", "as its page says"),
        check=refused_copy,
    ),
    Case(
        "file-on-another-host", "cases", "moved", None,
        ("moved",), ("file-host", "127.0.0.2:9"),
    ),
    Case(
        "link-to-upstream", "direct", "demo", "1.0", ("demo",), ("listed",),
        check=linked_to_upstream,
    ),
    Case(
        "upstream-lacks-the-name", "cases", "no-such-name", None,
        ("no-such-name",), ("upstream has no such project",),
    ),
    Case(
        "read-token-needed", "cases", "demo", None, anonymous=True,
        check=answers("/view/cases/simple/demo/", 401, "", auth=False),
    ),
    Case(
        "upstream-down-stored-page", "flaky", "steady", "1.0", ("steady",), ("listed",),
        prepare=upstream_down,
    ),
    Case(
        "upstream-times-out", "cases", "sluggish", None, ("sluggish",), ("cannot be used now",),
        check=answers("/view/cases/simple/sluggish/", 504, "cannot be used now"),
    ),
    Case(
        "upstream-down-unseen-name", "flaky", "unseen", None, ("unseen",), ("cannot be used now",),
        prepare=upstream_down,
        check=answers("/view/flaky/simple/unseen/", 502, "cannot be used now"),
    ),
)  # fmt: skip


def run_case(world: World, case: Case) -> None:
    """The row: prepare, the client, then what it checks after, and ``view explain``."""
    if case.prepare is not None:
        case.prepare(world)
    index = index_url(world, case.view, auth=not case.anonymous)
    got, said = CLIENTS[case.client](world, index, case.requirement, world.tmp / f"out-{case.id}")
    assert got == case.want, (case.id, got, said)
    if case.check is not None:
        case.check(world)
    if case.explain:
        view = case.view.partition("@")[0]
        said = world.cli("view", "explain", view, *case.explain, *world.location())
        for words in case.says:
            assert words in said, (case.id, said)


def check_root_listing(world: World) -> None:
    """The view's root lists the private names and the upstream names it has served, no
    other upstream name (``strict`` serves only ``pinned-lib`` from upstream)."""
    assert _cache(world, "strict", "pinned-lib") == [wheel_name("pinned-lib", "1.0")]
    private = {p["name"] for p in world.get("/simple/").json()["projects"]}
    assert "corp-lib" in private
    root = world.get("/view/strict/simple/")
    assert root.status_code == 200, root.text
    assert {p["name"] for p in root.json()["projects"]} == private | {"pinned-lib"}
