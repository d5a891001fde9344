"""Examples and descriptions for ``skypi --help`` and each command's ``--help``: what a new
user types, shown under the flags (kept apart from the parser so the table stays readable)."""

from __future__ import annotations

import argparse
from typing import Final

EXAMPLES: Final[dict[str, str]] = {
    "skypi": """\
examples:
  skypi serve ./packages --create            a new index over a folder, on 127.0.0.1:8080
  skypi token create ./packages --scope upload --name laptop
  twine upload --repository-url http://127.0.0.1:8080/legacy/ -u __token__ -p TOKEN dist/*
  pip install --index-url http://127.0.0.1:8080/simple/ PACKAGE

Each command has its own examples: skypi COMMAND --help""",
    "serve": """\
examples:
  skypi serve ./packages --create            start a new, empty index
  skypi serve /srv/pypiserver-packages       serve the folder pypiserver served
  skypi serve ./packages --private           reads need a token too
  skypi serve ./packages -i 0.0.0.0 -p 9000  listen on every address, port 9000
  skypi serve /mnt/ro --state-dir /var/lib/skypi   a read-only folder""",
    "dev": """\
examples:
  skypi dev                                   then, in another shell:
  aws --endpoint-url http://127.0.0.1:4566 s3 cp dist/x-1.0-py3-none-any.whl s3://skypi-dev/packages/
  pip install --index-url http://127.0.0.1:8080/simple/ x""",
    "reindex": """\
examples:
  skypi reindex ./packages --check            report drift, change nothing (exit 1 if any)
  skypi reindex ./packages                    rewrite the pages that differ
  skypi reindex --bucket BUCKET               the same on a deployed index (AWS credentials)""",
    "publish": """\
examples:
  skypi publish dist/* --url https://pypi.example.com --token "$SKYPI_TOKEN"
  SKYPI_URL=http://127.0.0.1:8080 skypi publish big-1.0-cp312-manylinux_2_28_x86_64.whl
  skypi publish dist/* --trusted-publishing always     in CI, with no stored token""",
    "doctor": """\
examples:
  skypi doctor http://127.0.0.1:8080 --token ADMIN_TOKEN
  skypi doctor https://API_URL --read-url https://CDN_URL --token ADMIN_TOKEN""",
    "import": """\
examples:
  skypi import /srv/old-pypiserver --to ./packages        a folder index
  skypi import ./devpi-export --bucket BUCKET             a deployed index (AWS credentials)""",
    "token": """\
examples:
  skypi token create ./packages --scope upload --name laptop
  skypi token create ./packages --scope read --project acme-lib --expires-in 90
  skypi token list ./packages
  skypi token revoke 3f2a9c1b ./packages
  skypi token import-htpasswd /etc/pypiserver/htpasswd ./packages""",
    "token create": """\
examples:
  skypi token create ./packages --scope upload --name laptop
  skypi token create ./packages --scope read --project acme-lib --expires-in 90
  skypi token create ./packages --scope upload --namespace acme   acme and every acme-* project
  skypi token create --table TOKEN_TABLE --scope read --name ci    a deployed index""",
    "view": """\
examples:
  skypi view add safe --upstream https://pypi.org/simple/ --cooldown-days 7 --dir ./packages
  skypi view add safe --policy safe.toml --replace --dir ./packages
  skypi view osv all.zip --dir ./packages        block malicious packages (osv.dev's PyPI/all.zip)
  skypi view explain safe requests 2.33.0 --dir ./packages
  skypi view refresh safe --dir ./packages       ask upstream again now
  pip install --index-url http://127.0.0.1:8080/view/safe/simple/ PACKAGE""",
    "token list": """\
examples:
  skypi token list ./packages
  skypi token list ./packages --json
  skypi token list --table TOKEN_TABLE""",
    "token revoke": """\
examples:
  skypi token revoke 3f2a9c1b ./packages      the id first, as 'skypi token list' shows it""",
    "token import-htpasswd": """\
examples:
  skypi token import-htpasswd /etc/pypiserver/htpasswd ./packages
  skypi token import-htpasswd htpasswd ./packages --project acme-lib""",
    "publisher": """\
examples:
  skypi publisher add github acme/acme-lib ./packages --workflow release.yml --project acme-lib
  skypi publisher list ./packages
  skypi publisher remove 3f2a9c1b ./packages""",
    "namespace": """\
examples:
  skypi namespace add acme ./packages --owner platform --grant token:3f2a9c1b7d4e
  skypi namespace grant acme user:alice ./packages        an htpasswd user may publish acme-*
  skypi namespace grant acme publisher:9c1b7d4e3f2a ./packages    a trusted publisher
  skypi namespace grant acme token:3f2a9c1b7d4e ./packages --revoke
  skypi namespace list ./packages
  skypi namespace remove acme ./packages
  skypi namespace add acme --owner platform --url https://pypi.example.com --token ADMIN_TOKEN
  skypi namespace list --bucket BUCKET                    a deployed index (AWS credentials)""",
    "yank": """\
examples:
  skypi yank acme-lib 1.2.0 --reason "breaks on Python 3.13"
  skypi yank acme-lib acme_lib-1.2.0-py3-none-any.whl""",
    "unyank": """\
examples:
  skypi unyank acme-lib 1.2.0""",
    "delete": """\
examples:
  skypi delete acme-lib acme_lib-1.2.0-py3-none-any.whl""",
    "status": """\
examples:
  skypi status acme-lib deprecated --reason "use acme-core"
  skypi status acme-lib active""",
}

DESCRIPTIONS: Final[dict[str, str]] = {
    "namespace": "A namespace (PEP 752) reserves a name and every name that starts with it and "
    "a hyphen (acme: acme, acme-cli, acme-cloud-eu) for an owner. Only the principals it "
    "grants may publish new projects there: any other upload is refused with 409 and says "
    "which grant to ask for. Projects listed before it was added keep working. Principals: "
    "token:ID (the id 'skypi token list' shows), user:NAME (an htpasswd user), publisher:ID "
    "(a trusted publisher, 'skypi publisher list').",
    "token": "Tokens are how clients prove who they are: pip and uv read with a read token, "
    "twine and uv publish upload with an upload token, yank and delete take an admin token. "
    "A token is shown once and stored only as a hash.",
    "token create": "Create a token and print it once (store it now: it cannot be shown "
    "again). Scopes: read, upload (includes read), admin (includes both).",
    "token list": "List the tokens of an index: id, scopes, projects, created, expiry, last "
    "use and name. Never their secrets.",
    "token revoke": "Revoke a token by the id 'skypi token list' shows: it stops working at "
    "once locally, and within seconds at a deployed index's edge.",
}


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions as argparse does, and prints an examples block as it is written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_examples(parser: argparse.ArgumentParser, name: str = "skypi") -> None:
    """Give ``parser`` and every sub-command under it their examples and descriptions."""
    parser.formatter_class = HelpFormatter
    parser.epilog = EXAMPLES.get(name, parser.epilog)
    parser.description = DESCRIPTIONS.get(name, parser.description)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                add_examples(sub, command if name == "skypi" else f"{name} {command}")
