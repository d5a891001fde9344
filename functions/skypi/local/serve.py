"""``skypi serve DIR``: adopt the folder, watch it, and serve the API and the pages."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from skypi.api.settings import Settings
from skypi.core.tokens import redact
from skypi.indexer.service import Indexer
from skypi.local.access import ACCESS_LOGGER, AccessLog, access_logging
from skypi.local.startup import StartReport, reconcile
from skypi.store.local import LocalStore
from skypi.store.tokens import TokenRepository

if TYPE_CHECKING:
    import uvicorn

    from skypi.indexer.fills import BackgroundFills
    from skypi.indexer.views import Views
    from skypi.local.early import LateApp
    from skypi.local.watch import FolderWatcher

log = logging.getLogger("skypi.serve")


def adopt(store: LocalStore, show_progress: bool, indexer: Indexer | None = None) -> StartReport:
    """Index whatever changed in the folder since the index last saw it (all of it for an
    existing pypiserver folder), with a progress bar when that is a lot."""
    from tqdm import tqdm

    # The bar appears only if the pass takes more than a second (tqdm's delay).
    with tqdm(
        unit="file", desc="indexing", file=sys.stderr, delay=1.0, disable=not show_progress
    ) as bar:
        # each refused file is logged once, by the indexer
        return reconcile(store, indexer or Indexer(store), progress=bar.update)


def start_pass(store: LocalStore, watch: bool) -> tuple[StartReport, FolderWatcher | None]:
    """The start-up pass and the folder watcher, before the port answers. The watcher starts
    first, its watches set before the pass walks the folder: a file that lands while the
    pass runs is seen by the one or the other (an upload cannot race it: the port is not
    open yet), so one walk is enough. One indexer for the pass, the watcher and the upload
    API: a file seen by two of them is listed once (the second waits for the first's writes).

    Where watchdog would watch the state folder too, the watcher starts after the pass (each
    page the pass writes would wake it), and a second pass catches what landed in between."""
    from skypi.local.watch import FolderWatcher

    indexer = Indexer(store)
    watcher = FolderWatcher(store, indexer) if watch else None
    if watcher is None or watcher.watches_state:
        report = adopt(store, show_progress=True, indexer=indexer)
        if watcher is not None:
            watcher.start()
            report.merge(reconcile(store, indexer))
        return report, watcher
    watcher.start()
    try:
        return adopt(store, show_progress=True, indexer=indexer), watcher
    except BaseException:
        watcher.stop()
        raise


def _prog() -> str:
    """How the user can run skypi again: plain ``skypi`` only when that is this one."""
    here = os.path.abspath(sys.argv[0])
    found = shutil.which("skypi")
    return "skypi" if found and os.path.abspath(found) == here else os.path.relpath(here)


BANNER_NAME = "skypi serve banner (read)"
BANNER_TOKEN_DAYS = 7


def banner_token(store: LocalStore) -> str:
    """A read token for the terminal that started a private server: a new one each start
    (tokens are stored as hashes, so an old one cannot be shown again), the last one revoked."""
    from datetime import UTC, datetime, timedelta

    from skypi.core.tokens import Scope, TokenRecord, new_token

    repo = TokenRepository(store)
    for record in repo.all():
        if record.name == BANNER_NAME:
            repo.revoke(record.id)
    token = new_token()
    expires = datetime.now(UTC) + timedelta(days=BANNER_TOKEN_DAYS)
    repo.add(
        TokenRecord.create(
            token, name=BANNER_NAME, scopes={Scope.READ}, projects=None, expires=expires
        )
    )
    return token


def private_lines(url: str, host: str, token: str | None, prog: str, folder: Path) -> list[str]:
    """How each client reads a private index: one working line per convention."""
    if token:
        head = [
            f"Reads need a token (--private). A read token for this terminal (valid "
            f"{BANNER_TOKEN_DAYS} days, replaced at the next start):",
            f"  export TOKEN={token}",
        ]
    else:  # not a terminal (a service's log): never print a token there
        head = [
            "Reads need a token (--private). Create a read token (shown once) with:",
            f"  export TOKEN=$({prog} token create {folder} --scope read --name me)",
        ]
    auth_url = url.replace("://", "://__token__:$TOKEN@", 1)
    return [
        *head,
        "then, whichever client you use:",
        f"  pip install --index-url {auth_url}/simple/ PACKAGE",
        f"  PIP_INDEX_URL={auth_url}/simple/ pip install PACKAGE",
        f"  printf 'machine {host} login __token__ password %s\\n' \"$TOKEN\" >> ~/.netrc"
        "  # pip, uv, poetry, twine",
        "  UV_INDEX_SKYPI_USERNAME=__token__ UV_INDEX_SKYPI_PASSWORD=$TOKEN "
        f"uv pip install --index skypi={url}/simple/ PACKAGE",
        f"  uv auth login {url}/simple/ --token $TOKEN",
        f"  poetry source add skypi {url}/simple/ && "
        "poetry config http-basic.skypi __token__ $TOKEN",
        f"  twine: in ~/.pypirc, [skypi] repository = {url}/legacy/, username = __token__, "
        "password = an upload token; then twine upload -r skypi dist/*",
    ]


def shown_host(host: str) -> str:
    """The host to print in URLs: the one the README, the pages and the docs use, so a netrc
    or keyring entry made from one of them matches what pip is told (it matches by host name:
    ``localhost`` is not ``127.0.0.1`` to it).

    >>> shown_host("0.0.0.0"), shown_host("::"), shown_host("::1"), shown_host("pkgs.internal")
    ('127.0.0.1', '127.0.0.1', '[::1]', 'pkgs.internal')
    """
    if host in {"0.0.0.0", "::", "127.0.0.1", "localhost"}:  # noqa: S104 - what is printed
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _welcome(
    store: LocalStore,
    settings: Settings,
    host: str,
    port: int,
    token: str | None = None,
    scheme: str = "http",
) -> str:
    url = f"{scheme}://{shown_host(host)}:{port}"
    shown = shown_host(host)
    lines = [f"skypi is serving {store.packages_dir} at {url}/ (pages) and {url}/simple/"]
    if settings.private:
        lines += private_lines(url, shown, token, _prog(), store.packages_dir)
    else:
        lines += [
            f"  pip install --index-url {url}/simple/ PACKAGE",
            f"  uv pip install --index-url {url}/simple/ PACKAGE",
        ]
    if settings.upload_auth and not TokenRepository(store).all():
        lines += [
            "",
            "No tokens yet. Uploads need one; create it (shown once) with:",
            f"  {_prog()} token create {store.packages_dir} --scope upload --name me",
            "then upload with:",
            f"  twine upload --repository-url {url}/legacy/ -u __token__ -p TOKEN dist/*",
            f"  uv publish --publish-url {url}/legacy/ --token TOKEN dist/*",
            f"or copy files into {store.packages_dir}: they are indexed within a second.",
        ]
    return "\n".join(lines)


def page_address(url: str | None, scheme: str, host: str, port: int) -> str | None:
    """The address put into the pages' setup lines as they are served: ``--url``, else the one
    the banner prints. Listening on every address, the server does not know which one a
    browser used: the page's script writes the one it was loaded from.

    >>> page_address(None, "http", "127.0.0.1", 8080), page_address(None, "http", "0.0.0.0", 80)
    ('http://127.0.0.1:8080', None)
    """
    if url:
        return url
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - compared, not bound
        return None
    return f"{scheme}://{shown_host(host)}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, so a port in use is one clear error before anything else starts
    (and before the banner says where skypi serves)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        hint = (
            ": another program (or another skypi) listens there; choose a port with --port"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise ServeError(f"cannot listen on {host}:{port}: {reason}{hint}") from exc


class ServeError(Exception):
    """Why skypi serve cannot start, in one line."""


class RedactSecrets(logging.Filter):
    """Every log line of the server goes through :func:`~skypi.core.tokens.redact`, so a token
    in a path or a header never reaches the terminal or a log file, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean == message:
            return True
        # Each argument redacted in place: a formatter that reads the arguments themselves
        # (uvicorn's access lines unpack five) still finds them.
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        again = record.getMessage()
        if redact(again) != again:  # a secret in a value that is not text: the line as text
            record.msg, record.args = clean, None
        return True


def redact_logs() -> None:
    """Put :class:`RedactSecrets` on every handler: ours (root) and uvicorn's own."""
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access", ACCESS_LOGGER):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactSecrets) for f in handler.filters):
                handler.addFilter(RedactSecrets())


def _uvicorn(
    args: argparse.Namespace, store: LocalStore, settings: Settings, indexer: Indexer, views: Views
) -> tuple[uvicorn.Server, LateApp]:
    """The uvicorn server for ``skypi serve``: the app (logged by :class:`AccessLog` unless
    ``--no-access-log``), the wire's limits, TLS when asked; and the API, which the app
    answers with once it is loaded (:mod:`skypi.local.early`)."""
    import uvicorn

    from skypi.local.early import early_app
    from skypi.local.reasons import reason_protocol
    from skypi.local.wire import WireLimits, guarded_protocol

    tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key} if args.tls_cert else {}
    app, api = early_app(store, settings, indexer, views=views)
    config = uvicorn.Config(
        app if args.no_access_log else AccessLog(app),
        # twine shows an upload's refusal from the status line; the wire's limits hold
        http=guarded_protocol(WireLimits(client_timeout=args.client_timeout), reason_protocol()),
        log_level=args.log_level,
        access_log=False,  # skypi's own (AccessLog): uvicorn's has no bytes nor duration
        **tls,
    )
    server = uvicorn.Server(config)  # configures uvicorn's log handlers
    redact_logs()
    return server, api


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    access_logging()
    redact_logs()
    try:
        sock = listen(args.host, args.port)
    except ServeError as exc:
        print(f"skypi: {exc}", file=sys.stderr)
        return 2
    actions = args.authenticate if args.authenticate is not None else {"update"}
    scheme = "https" if args.tls_cert else "http"
    settings = Settings(
        private=args.private or bool(actions & {"download", "list"}),
        upload_auth=bool(actions) or args.private,
        max_upload_size=args.max_upload_size,
        health_path=args.health_endpoint,
        oidc_audience=args.oidc_audience,
        index_url=page_address(args.url, scheme, args.host, args.port),
    )
    if not settings.upload_auth:
        log.warning("authentication is off (-a .): anyone who can reach this port can upload")
    try:
        store = LocalStore(Path(args.dir), Path(args.state_dir) if args.state_dir else None)
    except OSError as exc:
        where = args.state_dir or os.path.join(args.dir, ".skypi")
        print(
            f"skypi: cannot write the index's state folder {where}: {exc.strerror or exc}. "
            "A read-only folder is served with --state-dir PATH (a writable folder elsewhere).",
            file=sys.stderr,
        )
        return 2
    report, watcher = start_pass(store, watch=not args.no_watch)
    log.info("%s", report.summary())
    views, fills = view_fills(store)
    server, api = _uvicorn(
        args, store, settings, watcher.indexer if watcher else Indexer(store), views
    )
    token = banner_token(store) if settings.private and sys.stderr.isatty() else None
    print(
        _welcome(store, settings, args.host, args.port, token, scheme),
        file=sys.stderr,
        flush=True,
    )
    api.start()  # loaded while the port already answers reads
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        fills.stop()
        if watcher:
            watcher.stop()
    return 0


def view_fills(store: LocalStore) -> tuple[Views, BackgroundFills]:
    """The views ``skypi serve`` answers with, and the pool that fills in the background the
    upstream files too big or too slow to fetch while a client waits (stopped with it)."""
    from skypi.indexer.fills import BackgroundFills
    from skypi.indexer.views import FILL_LIMIT, WAIT_BUDGET, Views

    views = Views(store, fill_limit=FILL_LIMIT, wait_budget=WAIT_BUDGET)
    fills = BackgroundFills(views)
    views.background = fills.submit
    return views, fills
