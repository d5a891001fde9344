"""``skypi view``: add, list, show, remove, explain and refresh views, and import OSV data, on a
folder's index (docs/views.md)."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from skypi.core.errors import SkypiError
from skypi.core.filenames import same_version
from skypi.core.osv import OsvData
from skypi.core.pages import format_time
from skypi.core.severity import LEVELS
from skypi.core.viewedge import valid_pin
from skypi.core.views import ViewPolicy, parse_policy
from skypi.indexer.views import Views
from skypi.store.base import Store
from skypi.store.upstream import UpstreamRefused, UpstreamUnavailable

MAX_OSV_BYTES = 2 * 1024**3  # osv.dev's PyPI/all.zip is far smaller
MAX_RECORD_BYTES = 16 * 1024**2


def add_view_parser(sub: Any, add_dir: Callable[[argparse.ArgumentParser], None]) -> None:
    view = sub.add_parser(
        "view",
        help="views: the index plus an upstream index (PyPI) under a policy",
        description="A view is a second index URL, /view/NAME/simple/, that adds an upstream "
        "index (PyPI or any PEP 691 index) to this one under a written policy: a cooldown, "
        "allow- and deny-lists, malware blocked from OSV data. Names published here always "
        "win. skypi serve serves every view of its folder.",
    )
    actions = view.add_subparsers(dest="view_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a view (or change one, with --replace)")
    add.add_argument("name", help="the view's name, in its URL: /view/NAME/simple/")
    add.add_argument("--policy", help="a policy file (TOML or JSON; docs/views.md)")
    add.add_argument("--upstream", help="the upstream index, such as https://pypi.org/simple/")
    add.add_argument("--cooldown-days", type=float, help="hold back files younger than this")
    add.add_argument("--deny", action="append", help="a project, or project<versions (repeat)")
    add.add_argument("--allow", action="append", help="only these projects (repeatable)")
    add.add_argument("--files", choices=["cache", "link"], help="cache upstream files (default)")
    add.add_argument(
        "--block-severity",
        choices=LEVELS,
        help="also block every advisory of the OSV data rated at this level or above",
    )
    add.add_argument("--replace", action="store_true", help="change an existing view")
    listing = actions.add_parser("list", help="list the views")
    show = actions.add_parser("show", help="a view's policy and what it has served")
    show.add_argument("name")
    remove = actions.add_parser("remove", help="remove a view, its pages and cached files")
    remove.add_argument("name")
    explain = actions.add_parser("explain", help="why each file of a project is listed or not")
    explain.add_argument("name", help="the view")
    explain.add_argument("project")
    explain.add_argument("version", nargs="?", help="only this version's files")
    explain.add_argument("--at", metavar="DATE", help="the view's form pinned at DATE (YYYY-MM-DD)")
    refresh = actions.add_parser("refresh", help="ask upstream again and remake the pages now")
    refresh.add_argument("name", help="the view")
    refresh.add_argument("projects", nargs="*", help="these (default: every one it served)")
    osv = actions.add_parser("osv", help="import OSV data (osv.dev's PyPI/all.zip, or JSON)")
    osv.add_argument("source", help="a .zip of OSV records, a folder of them, or one .json")
    for parser in (add, listing, show, remove, explain, refresh, osv):
        add_dir_option(parser, add_dir)


def add_dir_option(
    parser: argparse.ArgumentParser, add_dir: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The folder as ``--dir`` (a view's actions take names as their positionals)."""
    scratch = argparse.ArgumentParser(add_help=False)
    add_dir(scratch)
    default = os.environ.get("SKYPI_DIR") or scratch.get_default("dir")
    parser.add_argument("--dir", default=default, help=f"the packages folder (default {default})")
    parser.add_argument("--state-dir", help="the index's state folder (default: DIR/.skypi)")
    parser.add_argument(
        "--bucket",
        default=os.environ.get("SKYPI_BUCKET"),
        help="a deployed index's bucket (default $SKYPI_BUCKET), reached with your AWS "
        "credentials, instead of a local folder",
    )


def run(args: argparse.Namespace, store: Store) -> int:
    views = Views(store)
    try:
        return _ACTIONS[args.view_command](args, views)
    except SkypiError as exc:
        print(f"skypi: {exc}", file=sys.stderr)
        return 1
    except (UpstreamUnavailable, UpstreamRefused) as exc:
        print(f"skypi: the upstream index cannot be used now: {exc}", file=sys.stderr)
        return 1


def _policy_doc(args: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if args.policy:
        text = Path(args.policy).read_bytes()
        try:
            doc = (
                json.loads(text) if args.policy.endswith(".json") else tomllib.loads(text.decode())
            )
        except (ValueError, UnicodeDecodeError) as exc:
            raise SkypiError(f"{args.policy} is not a TOML or JSON policy: {exc}") from None
    flags = {
        "upstream": args.upstream,
        "cooldown-days": args.cooldown_days,
        "deny": args.deny,
        "allow": args.allow,
        "files": args.files,
        "block-severity": args.block_severity,
    }
    return doc | {k: v for k, v in flags.items() if v is not None}


def _add(args: argparse.Namespace, views: Views) -> int:
    policy = parse_policy(args.name, _policy_doc(args))
    views.save(policy, new=not args.replace)
    print(f"{'Changed' if args.replace else 'Added'} view {_describe(policy)}")
    print(f"  pip install --index-url http://HOST:PORT/view/{policy.name}/simple/ PACKAGE")
    if args.replace:
        _follow(args, views, policy.name)
    return 0


def _follow(args: argparse.Namespace, views: Views, view: str | None) -> None:
    """Make the stored pages the change affects again now (a folder's; a deployed index's
    view function does it itself when the object is written: docs/views.md)."""
    if args.bucket:
        print("The view function makes the stored pages again now (the bucket tells it).")
        return
    made = views.follow_change(view)
    print(f"Made {made} stored view page(s) again; cached files no view lists are deleted.")


def _describe(policy: ViewPolicy) -> str:
    days = policy.cooldown.total_seconds() / 86400
    rules = [f"cooldown {days:g} days", f"files {policy.files}"]
    if policy.deny:
        rules.append(f"deny {', '.join(r.text for r in policy.deny)}")
    if policy.allow:
        rules.append(f"allow {', '.join(r.text for r in policy.allow)}")
    if policy.block_severity:
        unrated = "blocked" if policy.block_unrated else "listed"
        rules.append(f"block severity {policy.block_severity}+ (unrated: {unrated})")
    if policy.exceptions:
        rules.append(f"{len(policy.exceptions)} exception(s)")
    return f"{policy.name} over {policy.upstream} ({'; '.join(rules)})"


def _list(args: argparse.Namespace, views: Views) -> int:
    names = views.names()
    if not names:
        print("No views. Add one with: skypi view add NAME --upstream URL", file=sys.stderr)
    for name in names:
        print(_describe(views.policy(name)))
    return 0


def _show(args: argparse.Namespace, views: Views) -> int:
    policy = views.policy(args.name)
    print(policy.to_json_bytes().decode(), end="")
    osv, _ = views.osv()
    print(f"OSV data: {len(osv)} advisories" if len(osv) else "OSV data: none imported")
    served = views.served(args.name)
    print(f"Upstream projects served: {len(served)}{': ' if served else ''}{', '.join(served)}")
    return 0


def _remove(args: argparse.Namespace, views: Views) -> int:
    gone = views.remove(args.name)
    print(f"Removed view {args.name} ({gone} stored objects)")
    return 0


def _explain(args: argparse.Namespace, views: Views) -> int:
    if args.at is not None and not valid_pin(args.at):
        raise SkypiError(f"--at takes a date, YYYY-MM-DD, not {args.at!r}")
    outcome = views.explain(args.name, args.project, args.at)
    for note in outcome.notes:
        print(f"{args.project}: {note}")
    shown = [
        v
        for v in outcome.verdicts
        if args.version is None or (v.version and same_version(v.version, args.version))
    ]
    width = max((len(v.filename) for v in shown), default=0)
    for v in shown:
        status = "listed" if v.listed else "blocked"
        detail = f": {v.detail}" if v.detail else ""
        print(f"{v.filename:<{width}}  {status:<7}  {v.reason.value}{detail}")
    if not shown and not outcome.notes:
        print(f"{args.project}: no file{' of ' + args.version if args.version else ''} upstream")
    if outcome.next_change is not None:
        print(f"The page next changes by itself at {format_time(outcome.next_change)}.")
    return 0


def _refresh(args: argparse.Namespace, views: Views) -> int:
    done = views.refresh(args.name, args.projects or None)
    for project, served in done.items():
        print(f"{project}: {served.value}")
    print(f"{len(done)} project(s) refreshed; {views.upstream.requests} upstream request(s)")
    return 0


def _osv(args: argparse.Namespace, views: Views) -> int:
    data = OsvData.from_records(_records(Path(args.source)))
    views.import_osv(data)
    every = [a for found in data.by_project.values() for a in found]
    malicious = sum(a.malicious for a in every)
    rated = sum(a.severity is not None for a in every if not a.malicious)
    print(
        f"Imported {len(data)} PyPI advisories ({malicious} malicious packages; "
        f"{rated} of the {len(every) - malicious} others rated by severity)"
    )
    _follow(args, views, None)
    return 0


def _records(source: Path) -> Iterator[dict[str, Any]]:
    """Every OSV record in a zip (osv.dev's export), a folder (recursively) or one file."""
    if source.is_dir():
        for path in sorted(source.rglob("*.json")):
            yield from _record(path.read_bytes(), str(path))
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            for member in archive.infolist():
                if member.filename.endswith(".json") and member.file_size <= MAX_RECORD_BYTES:
                    with archive.open(member) as fh:
                        yield from _record(fh.read(MAX_RECORD_BYTES + 1), member.filename)
    else:
        with source.open("rb") as fh:
            yield from _record(fh.read(MAX_OSV_BYTES), str(source))


def _record(raw: bytes, where: str) -> Iterator[dict[str, Any]]:
    try:
        found = json.load(io.BytesIO(raw))
    except ValueError as exc:
        raise SkypiError(f"{where} is not an OSV record (JSON): {exc}") from None
    for record in found if isinstance(found, list) else [found]:
        if not isinstance(record, dict) or "id" not in record:
            raise SkypiError(f"{where} holds something that is not an OSV record")
        yield record


_ACTIONS: dict[str, Callable[[argparse.Namespace, Views], int]] = {
    "add": _add,
    "list": _list,
    "show": _show,
    "remove": _remove,
    "explain": _explain,
    "refresh": _refresh,
    "osv": _osv,
}
