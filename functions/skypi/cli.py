"""The ``skypi`` command: serve a folder, manage tokens, yank and delete."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from skypi.cli_help import add_examples
from skypi.core.pages import PROJECT_STATUSES

if TYPE_CHECKING:
    from skypi.core.publishers import Publisher
    from skypi.store.base import Store
    from skypi.store.publishers import PublisherStore
    from skypi.store.tokens import TokenStore

DEFAULT_DIR = "./packages"
DEFAULT_URL = "http://127.0.0.1:8080"


def _size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([kmgt]?)i?b?", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 100M or 2G)")
    return int(match.group(1)) * int(1024 ** " kmgt".index(match.group(2) or " "))


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r} (a number from 1 to 65535)")
    return port


def _index_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(
            f"not an index URL: {text!r} (http:// or https://, a host, no query)"
        )
    return text.rstrip("/")


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days <= 0:
        raise argparse.ArgumentTypeError(
            f"not a number of days: {text!r} (a whole number, 1 or more; leave out "
            "--expires-in for a token that never expires)"
        )
    return days


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return seconds


def missing_folder(directory: str) -> str | None:
    """Why ``directory`` cannot be the packages folder, or None. A typo must not quietly
    become a new, empty index (or a stray ``.skypi`` in the current folder)."""
    path = Path(directory)
    if path.is_dir():
        return None
    if path.exists():
        return f"{directory} is not a folder"
    return (
        f"no folder {directory}: give the folder your index serves, or start a new, "
        f"empty index there with: skypi serve {directory} --create"
    )


def _authenticate(value: str) -> set[str]:
    """pypiserver's ``-a``: a comma list of update, download, list; '.' for none."""
    if value.strip() == ".":
        return set()
    actions = {a.strip() for a in value.split(",") if a.strip()}
    unknown = actions - {"update", "download", "list"}
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown action(s) {', '.join(sorted(unknown))}: use update, download, list or '.'"
        )
    return actions


def _store(directory: str, state_dir: str | None, bucket: str | None = None) -> Store:
    if bucket:  # a deployed index: the caller's AWS credentials reach its bucket directly
        from skypi.store.s3 import S3Store

        return S3Store(bucket)
    from skypi.store.local import LocalStore

    return LocalStore(Path(directory), Path(state_dir) if state_dir else None)


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir",
        nargs="?",
        default=os.environ.get("SKYPI_DIR", DEFAULT_DIR),
        help=f"the packages folder (default: $SKYPI_DIR or {DEFAULT_DIR})",
    )
    parser.add_argument(
        "--state-dir",
        help="where pages, .metadata files and tokens live (default: DIR/.skypi); "
        "with it, DIR may be read-only",
    )


def _add_bucket(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bucket",
        default=os.environ.get("SKYPI_BUCKET"),
        help="a deployed index's bucket (the stack's BucketName output; default $SKYPI_BUCKET), "
        "reached with your AWS credentials, instead of a local folder",
    )


def _add_table(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--table",
        default=os.environ.get("SKYPI_TOKEN_TABLE"),
        help="a deployed index's token table (the stack's TokenTable output; default "
        "$SKYPI_TOKEN_TABLE), reached with your AWS credentials, instead of a local folder",
    )


# pypiserver's flags that skypi does not take, with what to do instead (README, "Coming from
# pypiserver"): said in one line, instead of argparse's "unrecognized arguments".
PYPISERVER_FLAGS: dict[tuple[str, ...], str] = {
    ("-P", "--passwords"): "skypi checks tokens, not a password file: import its users once "
    "with `skypi token import-htpasswd FILE DIR` (they keep working for uploads), and give "
    "readers tokens (`skypi token create DIR --scope read`). `-P .` with `-a .` is `-a .`",
    ("-o", "--overwrite"): "skypi never overwrites a published file (pip and uv cache its "
    "hash): upload a new version, or `skypi delete PROJECT FILE` first",
    ("--fallback-url",): "skypi's /simple/ never falls back to another index (that is how "
    "dependency confusion happens): list PyPI as a second index in your client instead, "
    "see docs/public-dependencies.md",
    ("--disable-fallback",): "skypi never falls back to another index",
    ("--hash-algo",): "skypi always lists sha256 hashes (PEP 503): drop this flag",
    ("--log-file",): "skypi logs to standard error: redirect it, or run it under systemd "
    "(docs/serving.md)",
    ("--server",): "skypi serves with uvicorn: drop this flag",
    ("-v", "--verbose"): "skypi logs a line per request by default (--no-access-log turns it "
    "off); --log-level debug logs more",
    ("--log-req-frmt", "--log-res-frmt"): "skypi's request log has one format, a line per "
    "request in the Common Log Format with the seconds it took appended: drop this flag "
    "(--no-access-log turns the log off)",
}


# Flags that ask for what skypi does anyway: taken, with a note that they can go.
HARMLESS: Final = frozenset({"--disable-fallback", "--verbose"})


class _PypiserverFlag(argparse.Action):
    """A pypiserver flag skypi does not take: exit 2 with what to do instead (or, for one
    that asks for what skypi does anyway, a note)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        flag = self.option_strings[-1]
        if flag == "--passwords" and values == ".":
            print(
                f"skypi: {option_string} . is not needed: skypi has no password file",
                file=sys.stderr,
            )
            return
        if flag in HARMLESS:
            print(f"skypi: {option_string} is not needed: {self.help}", file=sys.stderr)
            return
        parser.exit(2, f"skypi: {option_string} is pypiserver's: {self.help}\n")


def _add_pypiserver_flags(parser: argparse._ArgumentGroup) -> None:
    for flags, instead in PYPISERVER_FLAGS.items():
        takes_value = flags[-1] not in HARMLESS
        parser.add_argument(
            *flags,
            action=_PypiserverFlag,
            nargs="?" if takes_value else 0,
            metavar="VALUE" if takes_value else None,
            help=instead,
        )


def _add_logging(parser: argparse.ArgumentParser) -> None:
    levels = ["debug", "info", "warning", "error"]
    parser.add_argument("--log-level", default="info", choices=levels)
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="do not log a line per request (by default each is logged at INFO, in the Common "
        "Log Format with the seconds it took appended)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skypi", description="A private Python package index (PEP 503/691/658/700/592)."
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_serve_parser(sub)
    _add_dev_parser(sub)
    _add_reindex_parser(sub)
    _add_client_parsers(sub)
    _add_import_parser(sub)
    _add_token_parser(sub)
    _add_publisher_parser(sub)
    _add_namespace_parser(sub)
    _add_view_parser(sub)
    _add_admin_parsers(sub)
    add_examples(parser)
    return parser


def _add_serve_parser(sub: Any) -> None:
    """``skypi serve``: a folder as an index, with pypiserver's flags named."""
    serve = sub.add_parser(
        "serve",
        help="serve a folder of packages as an index (what pypiserver users run)",
        description="Serve DIR as a package index: pip/uv read /simple/, twine and uv publish "
        "upload to /legacy/, files copied into DIR are indexed within a second.",
    )
    _add_dir(serve)
    serve.add_argument(
        "-i",
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for every one)",
    )
    serve.add_argument("-p", "--port", type=_port, default=8080, help="port (default 8080)")
    serve.add_argument(
        "--url",
        type=_index_url,
        help="the address users reach this index at (behind a proxy, or on 0.0.0.0), shown in "
        "the pages' setup lines; default: http://HOST:PORT, or the browser's address on 0.0.0.0",
    )
    serve.add_argument(
        "--create", action="store_true", help="create DIR if it does not exist (else refused)"
    )
    serve.add_argument(
        "--private",
        action="store_true",
        help="reads need a token too (pypiserver: -a download,list,update)",
    )
    serve.add_argument(
        "-a",
        "--authenticate",
        type=_authenticate,
        default=None,
        metavar="ACTIONS",
        help="pypiserver style: comma list of update, download, list "
        "(default update); '.' turns authentication off entirely",
    )
    serve.add_argument("--health-endpoint", default="/health", help="liveness path")
    serve.add_argument(
        "--max-upload-size",
        type=_size,
        default=_size("1G"),
        help="largest accepted upload (default 1G)",
    )
    serve.add_argument(
        "--no-watch",
        action="store_true",
        help="do not watch DIR for copied-in files (index at start only)",
    )
    serve.add_argument(
        "--client-timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="close a connection whose request headers take longer, or whose body pauses "
        "longer, than this (default 30)",
    )
    serve.add_argument(
        "--tls-cert", help="serve https with this PEM certificate (chain) file (with --tls-key)"
    )
    serve.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    serve.add_argument(
        "--oidc-audience",
        default=os.environ.get("SKYPI_OIDC_AUDIENCE", "skypi"),
        help="the audience CI tokens must carry for trusted publishing; make it unique to "
        "this index, e.g. its host name (default $SKYPI_OIDC_AUDIENCE or skypi)",
    )
    _add_logging(serve)
    _add_pypiserver_flags(serve.add_argument_group("pypiserver flags skypi does not take"))


def _add_dev_parser(sub: Any) -> None:
    """``skypi dev``: the AWS data path, emulated on this machine."""
    dev = sub.add_parser(
        "dev",
        help="run the AWS data path on this machine (emulated S3, SQS and Lambda)",
        description="Emulate the deployed stack: a moto S3 and SQS on loopback, the indexer "
        "Lambda fed by S3 events, and the API over the bucket. `aws s3 cp` into the bucket, "
        "then pip install from the index. State is in memory and ends with the process.",
    )
    dev.add_argument("-i", "--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    dev.add_argument("-p", "--port", type=_port, default=8080, help="index port (default 8080)")
    dev.add_argument(
        "--s3-port", type=_port, default=4566, help="emulated S3/SQS port (default 4566)"
    )
    dev.add_argument("--bucket", default="skypi-dev", help="bucket name (default skypi-dev)")
    dev.add_argument("--private", action="store_true", help="reads need a token too")
    dev.add_argument(
        "--no-auth", action="store_true", help="uploads need no token (never do this on AWS)"
    )
    _add_logging(dev)


def _add_reindex_parser(sub: Any) -> None:
    """``skypi reindex``: every page again from what storage holds."""
    reindex = sub.add_parser(
        "reindex",
        help="rebuild every page from what storage holds (or --check: report drift only)",
        description="Compare every page with the files in storage (a folder, or a deployed "
        "index's bucket) and rewrite those that differ. Safe while uploads continue.",
    )
    _add_dir(reindex)
    _add_bucket(reindex)
    reindex.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if any page has drifted"
    )
    reindex.add_argument(
        "--verify-hashes",
        action="store_true",
        help="re-read every file and check its hash, even where the page knows it unchanged",
    )
    reindex.add_argument(
        "--kvs-arn",
        default=os.environ.get("SKYPI_KVS_ARN"),
        help="with --bucket: the edge's KeyValueStore (the stack's EdgeRecords output; default "
        "$SKYPI_KVS_ARN), whose quarantine records are made to match the pages (PEP 792)",
    )
    reindex.add_argument(
        "--workers",
        type=int,
        default=None,
        help="projects in parallel (default 1 on a folder, 16 on S3)",
    )


def _add_client_parsers(sub: Any) -> None:
    """``skypi publish`` and ``skypi doctor``: clients of a running index."""
    publish = sub.add_parser(
        "publish",
        help="upload distributions of any size straight to storage (resumable)",
        description="Upload each FILE through presigned, create-only requests to the index's "
        "storage (bytes never pass through the API; big files go in resumable parts), then "
        "have the index verify and list it. Exit 0 when every file is published or already "
        "there, 1 when one was refused, 2 when the index cannot be used (auth, network).",
    )
    publish.add_argument("files", nargs="+", metavar="FILE", help="wheels and sdists")
    publish.add_argument(
        "--url",
        default=os.environ.get("SKYPI_URL", DEFAULT_URL),
        help=f"the index (default: $SKYPI_URL or {DEFAULT_URL})",
    )
    publish.add_argument(
        "--token", default=os.environ.get("SKYPI_TOKEN"), help="an upload token ($SKYPI_TOKEN)"
    )
    publish.add_argument(
        "--trusted-publishing",
        choices=["automatic", "always", "never"],
        default="automatic",
        help="exchange the CI job's OIDC identity for a short-lived upload token, as "
        "uv publish does: automatic (when no --token is given and a CI identity is found), "
        "always, or never",
    )

    doctor = sub.add_parser(
        "doctor",
        help="check a deployed (or `skypi dev`) index end to end",
        description="Publish a throw-away package through the API and a presigned upload, "
        "read it back through the read URL (negotiation, gzip, .metadata, private-read "
        "refusals), install it with pip, then yank and delete it and wait until the read URL "
        "stops serving it. Each step is printed with its time; exit status 0 when all pass.",
    )
    doctor.add_argument(
        "url",
        nargs="?",
        default=os.environ.get("SKYPI_URL", DEFAULT_URL),
        help=f"the index: its API and, by default, its read URL ($SKYPI_URL or {DEFAULT_URL})",
    )
    doctor.add_argument("--read-url", help="where pip reads from, when not URL (the CDN)")
    doctor.add_argument(
        "--token",
        default=os.environ.get("SKYPI_TOKEN"),
        help="an admin token, used to upload, read, yank and delete ($SKYPI_TOKEN)",
    )
    doctor.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="seconds to wait for the read URL to stop serving deleted files (60)",
    )


def _add_import_parser(sub: Any) -> None:
    """``skypi import``: another index's files copied in."""
    importing = sub.add_parser(
        "import",
        help="copy a pypiserver folder or devpi export into an index, byte for byte",
        description="Copy every distribution under SOURCE (flat or nested) to "
        "packages/<project>/<filename> of a folder index (--to) or a deployed index's bucket "
        "(--bucket), then index it. Files already there with the same bytes are skipped, so an "
        "interrupted import can be run again; files there with other bytes are reported.",
    )
    importing.add_argument("source", help="the folder to import from")
    target = importing.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="DIR", help="a skypi serve folder")
    target.add_argument("--bucket", help="a deployed index's bucket (your AWS credentials)")
    importing.add_argument("--workers", type=int, default=8, help="files in parallel (8)")
    importing.add_argument(
        "--no-index",
        action="store_true",
        help="only copy (a deployed index indexes from its S3 events; a served folder from "
        "its watcher)",
    )


def _add_token_parser(sub: Any) -> None:
    """``skypi token``: create, list, revoke, import htpasswd users."""
    token = sub.add_parser("token", help="create, list and revoke API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_sub.add_parser("create", help="create a token (shown once)")
    _add_dir(create)
    _add_table(create)
    create.add_argument(
        "--scope",
        action="append",
        choices=["read", "upload", "admin"],
        help="read, upload (includes read) or admin (includes both); repeatable; default upload",
    )
    create.add_argument(
        "--project", action="append", help="limit the token to this project (repeatable)"
    )
    create.add_argument(
        "--namespace",
        action="append",
        help="limit the token to the projects of this namespace: acme is acme and acme-* "
        "(repeatable; with --project, either)",
    )
    create.add_argument("--name", default="", help="a label to recognise the token by")
    create.add_argument(
        "--expires-in", type=_days, metavar="DAYS", help="the token stops working after DAYS days"
    )
    listing = token_sub.add_parser("list", help="list tokens (never their secrets)")
    _add_dir(listing)
    _add_table(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = token_sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", help="the id shown by 'skypi token list'")
    _add_dir(revoke)
    _add_table(revoke)

    htpasswd = token_sub.add_parser(
        "import-htpasswd",
        help="let pypiserver's htpasswd users (bcrypt entries) upload with their passwords",
        description="Import the bcrypt entries of an htpasswd file (htpasswd -B) as upload "
        "logins: twine and uv publish then work with the same username and password as with "
        "pypiserver. Reads take tokens: give readers 'skypi token create --scope read'.",
    )
    htpasswd.add_argument("file", help="the htpasswd file pypiserver used (-P)")
    _add_dir(htpasswd)
    _add_table(htpasswd)
    htpasswd.add_argument(
        "--scope", choices=["upload", "admin"], default="upload", help="default upload"
    )
    htpasswd.add_argument(
        "--project", action="append", help="limit the users to this project (repeatable)"
    )


def _add_view_parser(sub: Any) -> None:
    """``skypi view ...``: views over an upstream index (its module is imported only here)."""
    from skypi.local.viewcmd import add_view_parser

    add_view_parser(sub, _add_dir)


def _add_admin_parsers(sub: Any) -> None:
    """``skypi yank|unyank|delete|status``: the admin API of a running index."""
    for verb, text in (
        ("yank", "yank a file or release (PEP 592)"),
        ("unyank", "undo a yank"),
        ("delete", "delete one file"),
        ("status", "set a project's status (PEP 792): active, archived, deprecated, quarantined"),
    ):
        cmd = sub.add_parser(
            verb,
            help=text,
            description=f"{text.capitalize()} through the "
            "admin API of a running skypi (needs an admin token).",
        )
        cmd.add_argument("project")
        if verb == "status":
            cmd.add_argument("target", metavar="STATUS", choices=PROJECT_STATUSES)
        else:
            cmd.add_argument(
                "target", metavar="VERSION_OR_FILENAME" if verb != "delete" else "FILENAME"
            )
        if verb in {"yank", "status"}:
            cmd.add_argument("--reason", default="", help="shown by pip and uv")
        cmd.add_argument(
            "--url",
            default=os.environ.get("SKYPI_URL", DEFAULT_URL),
            help=f"the index (default: $SKYPI_URL or {DEFAULT_URL})",
        )
        cmd.add_argument(
            "--token",
            default=os.environ.get("SKYPI_TOKEN"),
            help="an admin token (default: $SKYPI_TOKEN)",
        )


def _add_namespace_parser(sub: Any) -> None:
    namespace = sub.add_parser(
        "namespace",
        help="reserve name prefixes for teams (PEP 752): add, grant, list, remove",
        description="A namespace (acme) covers the project acme and every acme-* project: only "
        "the principals it grants may publish new projects under it; projects listed before "
        "it was added keep working. Works on a folder, a deployed index's bucket (--bucket), "
        "or a running index's admin API (--url, with an admin token).",
    )
    actions = namespace.add_subparsers(dest="namespace_command", required=True, metavar="ACTION")

    def where(parser: argparse.ArgumentParser) -> None:
        _add_dir(parser)
        _add_bucket(parser)
        parser.add_argument("--url", help="a running index's admin API, instead of a folder")
        parser.add_argument(
            "--token",
            default=os.environ.get("SKYPI_TOKEN"),
            help="with --url: an admin token (default: $SKYPI_TOKEN)",
        )

    add = actions.add_parser("add", help="reserve a namespace")
    add.add_argument("name", help="the namespace: a project name (acme, acme-cloud)")
    add.add_argument("--owner", required=True, help="who it belongs to (a team), shown to readers")
    add.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="PRINCIPAL",
        help="token:ID, user:NAME or publisher:ID that may publish under it (repeatable)",
    )
    add.add_argument(
        "--open", action="store_true", help="anyone who may upload may publish under it"
    )
    where(add)
    grant = actions.add_parser("grant", help="let a principal publish under a namespace")
    grant.add_argument("name")
    grant.add_argument("principal", help="token:ID ('skypi token list'), user:NAME, publisher:ID")
    grant.add_argument("--revoke", action="store_true", help="take the grant away instead")
    where(grant)
    listing = actions.add_parser("list", help="list namespaces, owners and grants")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    where(listing)
    remove = actions.add_parser("remove", help="remove a namespace (its names are free again)")
    remove.add_argument("name")
    where(remove)


def _add_publisher_parser(sub: Any) -> None:
    publisher = sub.add_parser(
        "publisher",
        help="trusted publishers: CI jobs that publish with no stored secret",
        description="Register the CI identities (GitHub Actions, GitLab CI, any OIDC issuer) "
        "whose OIDC tokens `uv publish --trusted-publishing always` and the PyPA publish action "
        "exchange at /_/oidc/mint-token for a 15-minute upload token.",
    )
    actions = publisher.add_subparsers(dest="publisher_command", required=True, metavar="ACTION")

    def where(parser: argparse.ArgumentParser) -> None:
        _add_dir(parser)
        parser.add_argument(
            "--table",
            default=os.environ.get("SKYPI_PUBLISHER_TABLE"),
            help="a deployed index's publisher table (the stack's PublisherTable output; "
            "default $SKYPI_PUBLISHER_TABLE), reached with your AWS credentials",
        )

    add = actions.add_parser("add", help="register a trusted publisher")
    kinds = add.add_subparsers(dest="kind", required=True, metavar="KIND")
    github = kinds.add_parser("github", help="a GitHub Actions workflow")
    github.add_argument("repository", metavar="OWNER/REPOSITORY")
    github.add_argument(
        "--workflow", required=True, help="file in .github/workflows/, e.g. release.yml"
    )
    github.add_argument("--environment", help="only jobs that run in this environment")
    github.add_argument(
        "--owner-id",
        help="the owner's numeric id (gh api repos/OWNER/REPO --jq .owner.id): matched "
        "instead of the name, so a rename keeps working and a re-registered name does not",
    )
    github.add_argument(
        "--repository-id", help="the repository's numeric id (gh api repos/OWNER/REPO --jq .id)"
    )
    github.add_argument(
        "--issuer",
        default=None,
        help="GitHub Enterprise Server's issuer (https://HOST/_services/token); "
        "default GitHub's own",
    )
    gitlab = kinds.add_parser("gitlab", help="a GitLab CI pipeline")
    gitlab.add_argument("project_path", metavar="NAMESPACE/PROJECT")
    gitlab.add_argument("--ci-config", default=".gitlab-ci.yml", help="default .gitlab-ci.yml")
    gitlab.add_argument("--environment", help="only jobs that deploy to this environment")
    gitlab.add_argument("--issuer", default=None, help="a self-managed GitLab's URL")
    generic = kinds.add_parser("oidc", help="any OIDC issuer (self-hosted CI)")
    generic.add_argument("issuer", metavar="ISSUER_URL")
    generic.add_argument(
        "--claim",
        action="append",
        required=True,
        metavar="NAME=VALUE",
        help="a claim the token must carry with exactly this value (repeatable)",
    )
    generic.add_argument("--audience", help="the aud its tokens carry (default: this index's)")
    for kind in (github, gitlab, generic):
        kind.add_argument(
            "--project",
            action="append",
            required=True,
            help="a project it may publish (repeatable)",
        )
        where(kind)
    listing = actions.add_parser("list", help="list trusted publishers")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    where(listing)
    remove = actions.add_parser("remove", help="remove a trusted publisher by its id")
    remove.add_argument("id", help="the id shown by 'skypi publisher list'")
    where(remove)


def _version() -> str:
    import skypi

    return f"skypi {skypi.__version__}"


def install_hint(extra: str) -> str:
    """How to add ``extra`` to this copy of skypi, in words that work where it came from.

    skypi is installed from a checkout, not from PyPI, so a bare ``pip install 'skypi[x]'``
    would fetch whatever someone else registered under that name. The installed copy's
    ``direct_url.json`` (PEP 610) says which checkout it was built from.

    >>> "pip install 'skypi[" in install_hint("aws")
    False
    """
    import importlib.metadata
    import json
    from urllib.parse import unquote, urlsplit

    source = None
    editable = False
    try:
        recorded = importlib.metadata.distribution("skypi").read_text("direct_url.json")
        origin = json.loads(recorded or "{}")
        if str(origin.get("url", "")).startswith("file://"):
            source = unquote(urlsplit(origin["url"]).path)
            editable = bool(origin.get("dir_info", {}).get("editable"))
    except (importlib.metadata.PackageNotFoundError, ValueError, AttributeError):
        pass
    if source and editable:
        return f"run `make setup` in {source} (it installs every extra into its .venv)"
    checkout = source or "/path/to/skypi-checkout"
    return (
        f"uv tool install --reinstall '{checkout}[{extra}]' "
        f"(or pipx install --force '{checkout}[{extra}]')"
    )


def _has_botocore() -> bool:
    import importlib.util

    return importlib.util.find_spec("botocore") is not None


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, so a closed pipe is caught below and not at exit
    except BrokenPipeError:  # `skypi token list --json | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    return code


def _local_folder(args: argparse.Namespace) -> str | None:
    """The packages folder this command works on, when it works on one (not a bucket/table)."""
    if args.command == "serve":
        return None if args.create else args.dir
    if args.command == "reindex" and not args.bucket:
        return str(args.dir)
    if args.command == "token" and not args.table:
        return str(args.dir)
    if args.command == "namespace" and not args.bucket and not args.url:
        return str(args.dir)
    if args.command == "view" and not args.bucket:
        return str(args.dir)
    return None


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if (
        args.command == "token"
        and args.token_command == "revoke"  # noqa: S105
        and Path(args.id).is_dir()
        and not Path(args.dir).is_dir()
    ):  # `revoke DIR ID`, as older docs had it: an id is never a folder
        args.id, args.dir = args.dir, args.id
    folder = _local_folder(args)
    problem = missing_folder(folder) if folder is not None else None
    if problem:
        print(f"skypi: {problem}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from skypi.local.serve import serve

        if bool(args.tls_cert) != bool(args.tls_key):
            print("skypi: give both --tls-cert and --tls-key", file=sys.stderr)
            return 2
        return serve(args)
    if args.command == "dev":
        try:
            import moto  # noqa: F401
        except ImportError:
            print(
                f"skypi: `skypi dev` needs the AWS emulator (the emulator extra): "
                f"{install_hint('emulator')}",
                file=sys.stderr,
            )
            return 2
        from skypi.local.dev import dev

        return dev(args)
    if (getattr(args, "bucket", None) or getattr(args, "table", None)) and not _has_botocore():
        print(
            "skypi: --bucket and --table reach AWS, which needs botocore (the aws extra): "
            f"{install_hint('aws')}",
            file=sys.stderr,
        )
        return 2
    if args.command == "reindex":
        return _reindex(args)
    if args.command == "token":
        return _token(args)
    if args.command == "import":
        return _import(args)
    if args.command == "publish":
        return _publish(args)
    if args.command == "doctor":
        return _doctor(args)
    if args.command == "publisher":
        return _publisher(args)
    if args.command == "namespace":
        return _namespace(args)
    if args.command == "view":
        from skypi.local.viewcmd import run

        return run(args, _store(args.dir, args.state_dir, args.bucket))
    return _admin(args)


def _reindex(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from skypi.indexer.rebuild import Rebuilder
    from skypi.indexer.service import Indexer
    from skypi.store.local import LocalStore

    store = _store(args.dir, args.state_dir, args.bucket)
    workers = args.workers or (16 if args.bucket else 1)  # threads only contend for a disk
    edge = None
    if args.bucket and args.kvs_arn:
        from skypi.store.kvs import EdgeQuarantine, KeyValueStore

        edge = EdgeQuarantine(KeyValueStore(args.kvs_arn))
    rebuilder = Rebuilder(
        Indexer(store), verify_hashes=args.verify_hashes, workers=workers, edge=edge
    )
    with tqdm(
        unit="file", desc="checking" if args.check else "reindexing", file=sys.stderr, disable=None
    ) as bar:
        report = rebuilder.run(check=args.check, progress=bar.update)
    if isinstance(store, LocalStore) and not args.check:  # the next start trusts them
        from skypi.local.startup import record_all

        record_all(store, failed={project for project, _ in report.failed})
    for drift in report.drift:
        print(("drift: " if args.check else "repaired: ") + str(drift))
    for key, reason in report.set_aside:  # not drift: no page lists them
        print(f"set aside: {rebuilder.indexer.where(key)}: {reason}")
    for key, reason in report.skipped:
        print(f"skipped {key}: {reason}", file=sys.stderr)
    for project, reason in report.failed:
        print(f"cannot check {project}: {reason}", file=sys.stderr)
    count = len(report.drift)
    verdict = f"{count} problem{'s' if count != 1 else ''}" if count else "no drift"
    aside = f", {len(report.set_aside)} set aside (not indexed)" if report.set_aside else ""
    failed = f", {len(report.failed)} projects not checked" if report.failed else ""
    print(
        f"{report.projects} projects, {report.files} files: {verdict}{aside}{failed}"
        + (" (nothing changed: --check)" if args.check and report.drift else ""),
        file=sys.stderr,
    )
    return 1 if (args.check and report.drift) or report.failed else 0


def _publish(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    paths = [Path(f) for f in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"skypi: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    bars: list[tqdm[Any]] = []

    def progress(filename: str, total: int) -> Callable[[int], object]:
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=filename,
            file=sys.stderr,
            disable=None,
            leave=False,
        )
        bars.append(bar)
        return bar.update

    import httpx

    from skypi.client.oidc import TrustedPublishingError, burn, mint

    token, minted = args.token, None
    if args.trusted_publishing == "always" and token:
        print("skypi: --trusted-publishing always takes no --token", file=sys.stderr)
        return 2
    if args.trusted_publishing != "never" and not token:
        with httpx.Client(timeout=60) as http:
            try:
                minted = token = mint(args.url, http)
            except TrustedPublishingError as exc:
                if args.trusted_publishing == "always":
                    print(f"skypi: trusted publishing: {exc}", file=sys.stderr)
                    return 2
                print(f"skypi: trusted publishing not used: {exc}", file=sys.stderr)
        if minted is None and args.trusted_publishing == "always":
            print(
                "skypi: trusted publishing: no CI identity found (GitHub Actions needs "
                "'permissions: id-token: write'; GitLab CI an id_tokens entry)",
                file=sys.stderr,
            )
            return 2
    try:
        return _publish_files(args.url, token, paths, progress, bars)
    finally:
        if minted:
            with httpx.Client(timeout=30) as http:
                burn(args.url, minted, http)


def _publish_files(
    url: str,
    token: str | None,
    paths: list[Path],
    progress: Callable[[str, int], Callable[[int], object]],
    bars: list[Any],
) -> int:
    from skypi.client.publish import PublishClient, PublishError

    publisher = PublishClient(url, token, progress=progress)
    refused = 0
    for path in paths:
        try:
            result = publisher.publish(path)
        except PublishError as exc:
            print(f"skypi: {exc}", file=sys.stderr)
            return 2
        finally:
            for bar in bars:
                bar.close()
            bars.clear()
        if result.status == "refused":
            refused += 1
            print(f"refused {result.filename}: {result.message}", file=sys.stderr)
        else:
            detail = f": {result.message}" if result.message else ""
            print(f"{result.status} {result.filename}{detail}")
    return 1 if refused else 0


def _doctor(args: argparse.Namespace) -> int:
    from skypi.client.doctor import Doctor, Step

    print(f"skypi doctor {args.url}" + (f" (reads: {args.read_url})" if args.read_url else ""))

    def report(step: Step) -> None:
        mark = {"ok": "ok  ", "fail": "FAIL", "skip": "skip"}[step.status]
        print(f"  {mark} {step.seconds:6.2f} s  {step.name}: {step.detail}", flush=True)

    verdict = Doctor(args.url, args.token, read_url=args.read_url, wait=args.wait).run(report)
    skipped = sum(s.status == "skip" for s in verdict.steps)
    total = len(verdict.steps)
    if verdict.ok:
        print(f"verdict: healthy, {total - skipped} of {total} checks passed, {skipped} skipped")
        return 0
    names = "; ".join(s.name for s in verdict.failed)
    print(f"verdict: NOT healthy, {len(verdict.failed)} of {total} checks failed: {names}")
    return 1


def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from skypi.local.importer import Importer

    source = Path(args.source)
    if not source.is_dir():
        print(f"skypi: {source} is not a folder", file=sys.stderr)
        return 2
    store = _store(args.to or DEFAULT_DIR, None, args.bucket)
    with tqdm(unit="file", desc="importing", file=sys.stderr, disable=None) as bar:

        def set_total(count: int) -> None:
            bar.total = count
            bar.refresh()

        report = Importer(store, workers=args.workers).run(
            source, index=not args.no_index, progress=bar.update, total=set_total
        )
    for path, reason in report.skipped + report.conflicts + report.refused:
        print(f"not imported: {path}: {reason}", file=sys.stderr)
    for path, reason in report.copies:
        print(f"a copy, imported once: {path}: {reason}", file=sys.stderr)
    failed = report.indexed.failed  # not the files' fault: reindex looks at them again
    for project, error in failed.items():
        print(f"not indexed: {project}: {error} (run `skypi reindex`)", file=sys.stderr)
    print(
        f"{len(report.copied)} copied, {len(report.identical)} already there, "
        f"{len(report.copies)} copies, {len(report.conflicts)} conflicts, "
        f"{len(report.skipped)} skipped; {len(report.indexed.added)} newly indexed, "
        f"{len(report.refused)} refused by the indexer"
        + (f", {len(failed)} projects failed" if failed else ""),
        file=sys.stderr,
    )
    if report.conflicts:
        print(
            "A conflict is a second file of one name with other bytes: compare them "
            "(sha256sum), keep the right one in SOURCE, and run the import again.",
            file=sys.stderr,
        )
    return 1 if report.conflicts or report.skipped or report.refused or failed else 0


def _not_an_index(args: argparse.Namespace) -> str | None:
    """Why a folder holds no tokens yet (it has no state folder), or None when it has one."""
    from skypi.store.local import STATE_DIR_NAME

    state = Path(args.state_dir) if args.state_dir else Path(args.dir) / STATE_DIR_NAME
    if state.is_dir():
        return None
    return (
        f"{args.dir} has no tokens: it is not a skypi index yet (no {state}). Create the "
        f"first token with: skypi token create {args.dir}"
    )


def _htpasswd_kind(password_hash: str) -> str:
    """What an htpasswd entry that cannot be imported is, said before why (bcrypt only: the
    others are unsalted or weak, and skypi never stores a weaker hash than the token's)."""
    kinds = {"{SHA}": "an unsalted SHA-1 ({SHA}) entry: ", "$apr1$": "an MD5 (apr1) entry: "}
    for prefix, kind in kinds.items():
        if password_hash.startswith(prefix):
            return kind
    if len(password_hash) == 13:
        return "a crypt(3) entry: "
    return ""


def _token(args: argparse.Namespace) -> int:
    """``skypi token``: create, list, revoke or import tokens, in a folder or a table."""
    if args.table:
        from skypi.store.dynamo_tokens import DynamoTokenRepository

        repo: TokenStore = DynamoTokenRepository(args.table)
    else:
        from skypi.store.tokens import TokenRepository

        not_an_index = _not_an_index(args)
        if not_an_index and args.token_command in ("list", "revoke"):
            print(f"skypi: {not_an_index}", file=sys.stderr)  # and nothing is made in it
            return 0 if args.token_command == "list" else 1  # noqa: S105
        repo = TokenRepository(_store(args.dir, args.state_dir))
    command = {
        "import-htpasswd": _import_htpasswd,
        "create": _create_token,
        "list": _list_tokens,
    }.get(args.token_command, _revoke_token)
    return command(args, repo)


def _import_htpasswd(args: argparse.Namespace, repo: TokenStore) -> int:
    """pypiserver's users, each a token record of its bcrypt password; the others skipped,
    with what to do for them."""
    from skypi.core.tokens import TokenRecord

    imported, skipped = 0, 0
    for number, raw in enumerate(Path(args.file).read_bytes().splitlines(), start=1):
        line = raw.decode("utf-8", "replace").strip()
        if not line or line.startswith("#"):
            continue
        user, _, password_hash = line.partition(":")
        try:
            if "\ufffd" in line:
                raise ValueError("the line is not UTF-8")
            record = TokenRecord.for_user(
                user,
                password_hash,
                scopes={args.scope},
                projects=set(args.project) if args.project else None,
            )
        except ValueError as exc:
            skipped += 1
            print(
                f"skipped line {number} ({user}): {_htpasswd_kind(password_hash)}{exc}",
                file=sys.stderr,
            )
            continue
        repo.add(record, overwrite=True)
        imported += 1
    print(f"{imported} users imported, {skipped} skipped", file=sys.stderr)
    if skipped:
        print(
            "For each skipped user, either set a bcrypt password (htpasswd -B FILE USER) "
            "and import again, or give them a token: "
            f"skypi token create {f'--table {args.table}' if args.table else args.dir} "
            f"--scope {args.scope} --name USER",
            file=sys.stderr,
        )
    return 1 if skipped else 0


def _create_token(args: argparse.Namespace, repo: TokenStore) -> int:
    """A new token, printed once; its record (the hash) is what the index keeps."""
    from datetime import UTC, datetime, timedelta

    from skypi.core.tokens import TokenRecord, new_token

    token = new_token()
    try:
        record = TokenRecord.create(
            token,
            name=args.name,
            scopes=set(args.scope or ["upload"]),
            projects=set(args.project) if args.project else None,
            expires=(
                datetime.now(UTC) + timedelta(days=args.expires_in) if args.expires_in else None
            ),
            namespaces=set(args.namespace) if args.namespace else None,
        )
    except ValueError as exc:
        print(f"skypi: {exc}", file=sys.stderr)
        return 2
    repo.add(record)
    print(token)
    spaces = ", ".join(sorted(record.namespaces or ()))
    print(
        f"Token {record.id} ({', '.join(sorted(record.scopes))}"
        f"{'; projects ' + ', '.join(sorted(record.projects)) if record.projects else ''}"
        f"{'; namespaces ' + spaces if spaces else ''})"
        " created. It is shown only this once: store it now.",
        file=sys.stderr,
    )
    return 0


def _list_tokens(args: argparse.Namespace, repo: TokenStore) -> int:
    records = repo.all()
    if args.json:
        print(
            json.dumps(
                [{k: v for k, v in r.to_json().items() if k != "hash"} for r in records],
                indent=1,
            )
        )
        return 0
    if not records:
        print("No tokens. Create one with: skypi token create", file=sys.stderr)
    used: dict[str, str] = getattr(repo, "last_used", dict)()
    for r in records:
        limits = sorted(r.projects or ()) + [f"{n}-*" for n in sorted(r.namespaces or ())]
        projects = ",".join(limits) if limits else "*"
        # Minted tokens live minutes: their expiry (or burn) is shown to the minute.
        shown = "%Y-%m-%d %H:%M" if r.publisher else "%Y-%m-%d"
        expires = f"expires {r.expires:{shown}}" if r.expires else "no expiry"
        seen = f"used {used[r.id][:10]}" if r.id in used else ""
        print(
            f"{r.id}  {','.join(sorted(r.scopes)):<20} {projects:<20} "
            f"{r.created:%Y-%m-%d %H:%M}  {expires:<18} {seen:<16} {r.name}".rstrip()
        )
    return 0


def _revoke_token(args: argparse.Namespace, repo: TokenStore) -> int:
    try:
        record = repo.revoke(args.id)
    except KeyError as exc:
        print(f"skypi: {exc.args[0]}", file=sys.stderr)
        return 1
    print(f"Revoked token {record.id} {record.name}".rstrip())
    return 0


def _publisher(args: argparse.Namespace) -> int:
    """``skypi publisher``: add, list or remove trusted publishers, in a folder or a table."""
    if args.table:
        from skypi.store.dynamo_publishers import DynamoPublisherRepository

        repo: PublisherStore = DynamoPublisherRepository(args.table)
    else:
        from skypi.store.publishers import PublisherRepository

        repo = PublisherRepository(_store(args.dir, args.state_dir))
    if args.publisher_command == "list":
        publishers = repo.all()
        if args.json:
            print(json.dumps([p.to_json() for p in publishers], indent=1))
        elif not publishers:
            print("No trusted publishers. Add one with: skypi publisher add", file=sys.stderr)
        for p in publishers:
            print(f"{p.id}  {','.join(sorted(p.projects)):<20} {p.describe()}")
        return 0
    if args.publisher_command == "remove":
        try:
            removed = repo.remove(args.id)
        except KeyError as exc:
            print(f"skypi: {exc.args[0]}", file=sys.stderr)
            return 1
        print(f"Removed publisher {removed.id} {removed.describe()}")
        return 0
    return _add_publisher(args, repo)


def _add_publisher(args: argparse.Namespace, repo: PublisherStore) -> int:
    from skypi.core.publishers import InvalidPublisher

    try:
        publisher = _new_publisher(args)
        repo.add(publisher)
    except InvalidPublisher as exc:
        print(f"skypi: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"skypi: {exc.args[0]}", file=sys.stderr)
        return 1
    print(
        f"Added publisher {publisher.id}: {publisher.describe()} may publish "
        f"{', '.join(sorted(publisher.projects))}"
    )
    return 0


def _new_publisher(args: argparse.Namespace) -> Publisher:
    """The publisher ``skypi publisher add KIND`` describes; InvalidPublisher if it is none."""
    from skypi.core.publishers import (
        GITHUB_ISSUER,
        GITLAB_ISSUER,
        GitHubPublisher,
        GitLabPublisher,
        InvalidPublisher,
        OidcPublisher,
    )

    projects = set(args.project)
    if args.kind == "github":
        github = GitHubPublisher.create(
            args.repository,
            workflow=args.workflow,
            projects=projects,
            environment=args.environment,
            owner_id=args.owner_id,
            repository_id=args.repository_id,
            issuer=args.issuer or GITHUB_ISSUER,
        )
        if not github.repository_id:
            print(
                "skypi: warning: matched by name only; give --owner-id and "
                "--repository-id so a deleted and re-registered name cannot publish",
                file=sys.stderr,
            )
        return github
    if args.kind == "gitlab":
        return GitLabPublisher.create(
            args.project_path,
            projects=projects,
            ci_config_path=args.ci_config,
            environment=args.environment,
            issuer=args.issuer or GITLAB_ISSUER,
        )
    claims = dict(c.partition("=")[::2] for c in args.claim)
    if any(not k or not v for k, v in claims.items()):
        raise InvalidPublisher("give each claim as NAME=VALUE")
    return OidcPublisher.create(
        args.issuer, claims=claims, projects=projects, audience=args.audience
    )


def _namespace(args: argparse.Namespace) -> int:
    """``skypi namespace``: on a folder or a bucket directly, or through the admin API."""
    from skypi.client.admin import AdminClient, AdminError
    from skypi.core.errors import SkypiError

    try:
        if args.url:
            if not args.token:
                print("skypi: --url needs an admin token: --token or $SKYPI_TOKEN", file=sys.stderr)
                return 2
            with AdminClient(args.url, args.token) as client:
                return _namespace_action(args, client)
        from skypi.indexer.namespaces import NamespaceAdmin
        from skypi.indexer.service import Indexer

        admin = NamespaceAdmin(Indexer(_store(args.dir, args.state_dir, args.bucket)))
        return _namespace_action(args, _LocalNamespaces(admin))
    except AdminError as exc:
        where = f"{exc.status}: " if exc.status else ""
        print(f"skypi: {where}{exc}", file=sys.stderr)
        return 1 if exc.status else 2
    except SkypiError as exc:
        print(f"skypi: {exc}", file=sys.stderr)
        return 1


class _LocalNamespaces:
    """The namespace actions on a store, answering records as the admin API does."""

    def __init__(self, admin: Any) -> None:
        self.admin = admin

    def namespaces(self) -> list[dict[str, Any]]:
        return [ns.to_json() for ns in self.admin.list()]

    def add_namespace(
        self, name: str, owner: str, grants: list[str], *, open: bool
    ) -> dict[str, Any]:
        return dict(self.admin.add(name, owner=owner, grants=grants, open=open).to_json())

    def grant(self, name: str, principal: str) -> dict[str, Any]:
        return dict(self.admin.grant(name, principal).to_json())

    def revoke(self, name: str, principal: str) -> dict[str, Any]:
        return dict(self.admin.revoke(name, principal).to_json())

    def remove_namespace(self, name: str) -> dict[str, Any]:
        return dict(self.admin.remove(name).to_json())


def _namespace_action(args: argparse.Namespace, target: Any) -> int:
    command = args.namespace_command
    if command == "list":
        found = target.namespaces()
        if args.json:
            print(json.dumps(found, indent=1))
            return 0
        if not found:
            print(
                "No namespaces. Add one with: skypi namespace add NAME --owner TEAM",
                file=sys.stderr,
            )
        for ns in found:
            print(_describe_namespace(ns))
        return 0
    if command == "add":
        done = target.add_namespace(args.name, args.owner, args.grant, open=args.open)
        print(f"Added namespace {_describe_namespace(done)}")
    elif command == "grant" and args.revoke:
        done = target.revoke(args.name, args.principal)
        print(f"Revoked {args.principal} on {_describe_namespace(done)}")
    elif command == "grant":
        done = target.grant(args.name, args.principal)
        print(f"Granted {args.principal} on {_describe_namespace(done)}")
    else:
        done = target.remove_namespace(args.name)
        print(f"Removed namespace {done['name']}")
    return 0


def _describe_namespace(ns: dict[str, Any]) -> str:
    grants = "open to every uploader" if ns["open"] else ", ".join(ns["grants"]) or "no grants"
    old = f"; predating: {', '.join(ns['predating'])}" if ns["predating"] else ""
    return f"{ns['name']}  owner {ns['owner']}; {grants}{old}"


def _admin(args: argparse.Namespace) -> int:
    from skypi.client.admin import AdminClient, AdminError
    from skypi.core.filenames import DISTRIBUTION_SUFFIXES

    if not args.token:
        print(
            "skypi: an admin token is needed: --token or $SKYPI_TOKEN "
            "(skypi token create --scope admin)",
            file=sys.stderr,
        )
        return 2
    which = "filename" if args.target.endswith(DISTRIBUTION_SUFFIXES) else "version"
    try:
        with AdminClient(args.url, args.token) as admin:
            if args.command == "delete":
                verb, names = "deleted", admin.delete(args.project, args.target)
            elif args.command == "status":
                verb, names = "status", admin.set_status(args.project, args.target, args.reason)
            elif args.command == "yank":
                verb = "yanked"
                names = admin.yank(args.project, **{which: args.target}, reason=args.reason)
            else:
                verb, names = "unyanked", admin.unyank(args.project, **{which: args.target})
    except AdminError as exc:
        if exc.status is None:
            print(
                f"skypi: {exc}. Is skypi serve running there? Give its address with --url or "
                "$SKYPI_URL.",
                file=sys.stderr,
            )
            return 2
        print(f"skypi: {exc.status}: {exc}", file=sys.stderr)
        return 1
    for name in names:
        print(f"{verb} {name}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
