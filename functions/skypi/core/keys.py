"""The storage key layout: every object skypi stores is built, recognised and granted here.

One bucket (locally: the folder, and its state folder for everything derived) holds each kind of
object under its own key *family*. For each family this module has

- its builders (:func:`file_key`, :func:`metadata_key`, :func:`page_key`, ...), which every
  reader and writer uses: no other module spells a key;
- its place in :func:`recognise`, which tells from any key its family and its project (and
  refuses what no builder makes: a project that is not a normalized name, a dot segment);
- its IAM resource pattern (:attr:`Family.grant`, under the bucket's ARN; IAM's ``*`` spans
  ``/``) and which role may read, write or delete it (:attr:`Family.access`). The CDK app
  derives each role's S3 statements and cdk-nag's acknowledgements from this table
  (``infra/grants.py``), so a family is written only by a role that is granted it; a test
  holds the synthesized template to the table.

Adding a family (a view, a namespace): a :class:`Family` in :data:`FAMILIES` with its grant and
access, its builders here, its branch in :func:`recognise`, and its case in the round trip of
``tests/unit/test_keys.py``. If it is served, its route goes in ``constants`` and the edge
function; its HTTP facts follow from the family (``skypi.core.http``).

The CDK app imports this module, so it imports the standard library only (``.importlinter``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple
from urllib.parse import quote, unquote

# -- prefixes and fixed keys ------------------------------------------------------------------

PACKAGES_PREFIX: Final = "packages/"  # distributions, one folder per project, and .metadata
SIMPLE_PREFIX: Final = "simple/"  # the index pages (PEP 503/691) and the root listing
SITE_PREFIX: Final = "site/"  # the pages for people
INTEGRITY_PREFIX: Final = "integrity/"  # PEP 740 provenance, one object per file
AUTH_PREFIX: Final = "auth/"  # token and trusted-publisher records (a folder index's)
LOCAL_PREFIX: Final = "local/"  # what only a folder index keeps (its fingerprints)
# PEP 792: a quarantined project's pages list no files; what is needed to list them again (each
# file's entry) is kept here, content-addressed, beside the page: no edge route reads it.
HELD_PREFIX: Final = "held/"
# PEP 752: the namespaces' records (owners, grants; never served) and the documents the
# namespace endpoints serve (``/simple/namespaces``, ``/simple/namespace/<name>``).
NAMESPACES_PREFIX: Final = "namespaces/"
NAMESPACE_RECORDS_KEY: Final = f"{NAMESPACES_PREFIX}records.json"
NAMESPACE_LIST_KEY: Final = f"{NAMESPACES_PREFIX}index.json"
NAMESPACE_PAGE: Final = "index.json"  # a namespace's document, in its folder
# Views over an upstream index (``/view/<view>/...``): per view, its policy, its pages (laid out
# under ``simple/`` as the private pages are, so the same edge rules pick them), the upstream
# pages it was made from, and the upstream files it cached. The OSV data the views block
# malware by is one object for the index.
VIEWS_PREFIX: Final = "views/"
# The root listing's pending changes (never served): a project whose appearance, removal or
# summary the root listing does not show yet has a record here, and one "rebuild due" object
# says a rebuild is asked for; the rebuild merges every record into the listing at once
# (``skypi.indexer.deferred``).
PENDING_PREFIX: Final = "pending/"
ROOT_PENDING_PREFIX: Final = f"{PENDING_PREFIX}root/"
ROOT_DUE_KEY: Final = f"{PENDING_PREFIX}root-due.json"
VIEW_POLICY: Final = "policy.json"
VIEW_SIMPLE: Final = "simple"
VIEW_UPSTREAM: Final = "upstream"
VIEW_FILES: Final = "files"
# When each stored view page next needs making again (its next change by time, or its upstream
# page's revalidation), for every view at once, and when the one timer is armed: what the view
# Lambda's schedule reads instead of looking at every page.
VIEW_DUE_KEY: Final = f"{VIEWS_PREFIX}due.json"
# What a view makes for each request (its root listing, a time-pinned page) is sent to the
# origin under this prefix, where nothing is ever stored: the bucket misses, and CloudFront's
# origin group asks the view Lambda (docs/views.md). No family, so ``recognise`` refuses it.
VIEW_MADE_PREFIX: Final = "view/"
OSV_PREFIX: Final = "osv/"
OSV_KEY: Final = f"{OSV_PREFIX}PyPI.json"
METADATA_SUFFIX: Final = ".metadata"  # PEP 658: a wheel's core metadata beside it
GZIP_SUFFIX: Final = ".gz"  # a page's gzip variant, beside it
# The objects of one page: its PEP 691 JSON, its HTML as text/html and as the v1 HTML type.
PageKind = Literal["json", "html", "v1html"]
PAGE_OBJECTS: Final[Mapping[PageKind, str]] = {
    "json": "index.json",
    "html": "index.html",
    "v1html": "index.v1html",
}
ROOT_JSON_KEY: Final = f"{SIMPLE_PREFIX}index.json"
ROOT_HTML_KEY: Final = f"{SIMPLE_PREFIX}index.html"
# The landing page carries its own manifest; older versions kept it beside, in index.json.
SITE_PAGE: Final = "index.html"  # a page for people, in its folder
LANDING_KEY: Final = f"{SITE_PREFIX}{SITE_PAGE}"
LEGACY_SITE_JSON_KEY: Final = f"{SITE_PREFIX}index.json"
SITE_PROJECT_PREFIX: Final = f"{SITE_PREFIX}project/"
PROVENANCE_NAME: Final = "provenance.json"
TOKENS_KEY: Final = f"{AUTH_PREFIX}tokens.json"
PUBLISHERS_KEY: Final = f"{AUTH_PREFIX}publishers.json"
USED_OIDC_KEY: Final = f"{AUTH_PREFIX}used-oidc-tokens.json"
FINGERPRINTS_KEY: Final = f"{LOCAL_PREFIX}fingerprints.json"

# -- who may do what ----------------------------------------------------------------------------

Role = Literal["api", "indexer", "view"]
API: Final[Role] = "api"  # the API Lambda (uploads, admin, reads; it runs the indexer inline)
INDEXER: Final[Role] = "indexer"  # the indexer Lambda (drop-ins, removals, restores)
# The view Lambda (``/view/*``'s miss, behind the bucket in CloudFront's origin group; and the
# schedules that make a view's pages again when they change by time alone).
VIEW: Final[Role] = "view"
# the token sync touches no key: DynamoDB only
ROLES: Final[tuple[Role, ...]] = (API, INDEXER, VIEW)
# read: GetObject (and HEAD); write: PutObject (and a copy's target); delete: DeleteObject;
# versions: GetObjectVersion (a restore copies an old version); multipart: abort and list the
# parts of an upload a client sends straight to storage (its other calls are writes).
Access = Literal["read", "write", "delete", "versions", "multipart"]
ACCESSES: Final[tuple[Access, ...]] = ("read", "write", "delete", "versions", "multipart")
_PAGES: Final[Mapping[Role, tuple[Access, ...]]] = {
    API: ("read", "write"),
    INDEXER: ("read", "write"),
}
# A view reads the private pages (a private name wins: the view serves its page) and the root
# listing (the view's root holds the private names), never writes them.
_PRIVATE_PAGES: Final[Mapping[Role, tuple[Access, ...]]] = {**_PAGES, VIEW: ("read",)}


@dataclass(frozen=True, eq=False)
class Family:
    """One kind of stored object: where it lives and who may touch it."""

    name: str
    grant: str  # the IAM resource pattern after ``<bucket ARN>/`` that covers every key
    access: Mapping[Role, tuple[Access, ...]] = field(default_factory=dict)
    revalidate: bool = False  # rewritten in place: served with a short, revalidated cache life

    def may(self, role: Role, access: Access) -> bool:
        return access in self.access.get(role, ())

    def __repr__(self) -> str:
        return f"<Family {self.name}>"


DISTRIBUTION: Final = Family(
    "distribution",
    f"{PACKAGES_PREFIX}*",
    {API: ("read", "write", "delete", "multipart"), INDEXER: ("read", "write", "versions")},
)
METADATA: Final = Family(
    "metadata",
    f"{PACKAGES_PREFIX}*{METADATA_SUFFIX}",
    {API: ("read", "write", "delete"), INDEXER: ("read", "write", "delete")},
)
PROJECT_PAGE: Final = Family("project page", f"{SIMPLE_PREFIX}*", _PRIVATE_PAGES, revalidate=True)
ROOT_LISTING: Final = Family("root listing", f"{SIMPLE_PREFIX}*", _PRIVATE_PAGES, revalidate=True)
LANDING: Final = Family("landing page", f"{SITE_PREFIX}*", _PAGES, revalidate=True)
LEGACY_LANDING: Final = Family(
    "legacy landing manifest",
    f"{SITE_PREFIX}*",
    {API: ("read",), INDEXER: ("read",)},
    revalidate=True,
)
PROJECT_SITE: Final = Family("project page for people", f"{SITE_PREFIX}*", _PAGES, revalidate=True)
RELEASE: Final = Family("release description", f"{SITE_PREFIX}*", _PAGES, revalidate=True)
# A folder index's token and publisher records; on AWS they are in DynamoDB, so no role of the
# stack touches them (the IAM tier found the grant unused).
AUTH_RECORD: Final = Family("auth record", f"{AUTH_PREFIX}*")
# The API deletes a file's provenance again when the index refuses the file (api/publish.py).
PROVENANCE: Final = Family("provenance", f"{INTEGRITY_PREFIX}*", {API: ("read", "write", "delete")})
HELD_FILES: Final = Family("held files", f"{HELD_PREFIX}*", _PAGES)
LOCAL_STATE: Final = Family("local state", f"{LOCAL_PREFIX}*")  # a folder index's only
# Written by the admin API only; the indexer reads the records to check a drop-in and to say
# on a new project's page which namespaces cover it.
NAMESPACE_RECORDS: Final = Family(
    "namespace records",
    NAMESPACE_RECORDS_KEY,
    {API: ("read", "write"), INDEXER: ("read",), VIEW: ("read",)},  # a reserved name wins
)
# ``*index.json``: the list and each namespace's document, never the records beside them.
NAMESPACE_DOCUMENT: Final = Family(
    "namespace document",
    f"{NAMESPACES_PREFIX}*{NAMESPACE_PAGE}",
    {API: ("write", "delete")},
    revalidate=True,
)
# Views: on AWS, the view Lambda's alone (``/view/*``'s miss and its schedules). Each family has
# its own pattern under ``views/<view>/`` (IAM's ``*`` spans ``/``, so ``views/*/simple/*`` is
# every view's pages and root); the policy is written by ``skypi view add`` with the
# operator's credentials, the OSV data by ``skypi view osv``: the Lambda only reads them.
_VIEW_PAGES: Final = f"{VIEWS_PREFIX}*/{VIEW_SIMPLE}/*"
VIEW_POLICY_RECORD: Final = Family(
    "view policy", f"{VIEWS_PREFIX}*/{VIEW_POLICY}", {VIEW: ("read",)}
)
# A name published (or reserved) here leaves every view at once: the roles that create project
# pages (the API, running the indexer inline, and the indexer) look for each view's stored page
# of it, delete it and take the name out of the view's served names (Views.yield_to_private).
_YIELD: Final[Mapping[Role, tuple[Access, ...]]] = {
    API: ("read", "delete"),
    INDEXER: ("read", "delete"),
}
VIEW_PAGE: Final = Family(
    "view page", _VIEW_PAGES, {**_YIELD, VIEW: ("read", "write", "delete")}, revalidate=True
)
VIEW_ROOT: Final = Family(
    "view root listing",
    _VIEW_PAGES,
    {API: ("read", "write"), INDEXER: ("read", "write"), VIEW: ("read", "write")},
    revalidate=True,
)
VIEW_UPSTREAM_PAGE: Final = Family(
    "view upstream page",
    f"{VIEWS_PREFIX}*/{VIEW_UPSTREAM}/*",
    {VIEW: ("read", "write", "delete")},
)
# The view function deletes a cached file no form of its view lists any more (an OSV record,
# a deny-list entry, upstream's quarantine found later: docs/views.md); a file too big to fetch
# while CloudFront waits is streamed in by a multipart upload, which a failed fill (a lying
# upstream, a run out of time) aborts.
VIEW_FILE: Final = Family(
    "view cached file",
    f"{VIEWS_PREFIX}*/{VIEW_FILES}/*",
    {VIEW: ("read", "write", "delete", "multipart")},
)
VIEW_DUE: Final = Family("view due record", VIEW_DUE_KEY, {VIEW: ("read", "write")})
OSV_DATA: Final = Family("osv data", OSV_KEY, {VIEW: ("read",)})
# Both roles record a project the root listing does not show yet, and ask for a rebuild; the
# indexer, which runs the rebuild, deletes what it merged.
ROOT_PENDING: Final = Family(
    "pending root entry",
    f"{PENDING_PREFIX}*",
    {API: ("read", "write"), INDEXER: ("read", "write", "delete")},
)
ROOT_DUE: Final = Family(
    "root rebuild due",
    f"{PENDING_PREFIX}*",
    {API: ("read", "write"), INDEXER: ("read", "write", "delete")},
)
FAMILIES: Final = (
    DISTRIBUTION,
    METADATA,
    PROJECT_PAGE,
    ROOT_LISTING,
    LANDING,
    LEGACY_LANDING,
    PROJECT_SITE,
    RELEASE,
    AUTH_RECORD,
    PROVENANCE,
    HELD_FILES,
    LOCAL_STATE,
    NAMESPACE_RECORDS,
    NAMESPACE_DOCUMENT,
    VIEW_POLICY_RECORD,
    VIEW_PAGE,
    VIEW_ROOT,
    VIEW_UPSTREAM_PAGE,
    VIEW_FILE,
    VIEW_DUE,
    OSV_DATA,
    ROOT_PENDING,
    ROOT_DUE,
)
AUTH_RECORDS: Final = frozenset({TOKENS_KEY, PUBLISHERS_KEY, USED_OIDC_KEY})

# -- builders -----------------------------------------------------------------------------------


def _segment(text: str, what: str) -> str:
    """``text`` as one key segment: never empty, a dot segment or more than one segment."""
    if not text or text in {".", ".."} or "/" in text:
        raise ValueError(f"invalid {what} for a storage key: {text!r}")
    return text


def file_key(project: str, filename: str) -> str:
    """Where an uploaded (or imported) file is stored: under its project's folder.

    >>> file_key("foo", "foo-1.0.tar.gz")
    'packages/foo/foo-1.0.tar.gz'
    """
    return f"{PACKAGES_PREFIX}{_segment(project, 'project')}/{_segment(filename, 'filename')}"


def metadata_key(file_key: str) -> str:
    """A distribution's PEP 658 core metadata, stored beside it.

    >>> metadata_key("packages/foo/foo-1.0-py3-none-any.whl")
    'packages/foo/foo-1.0-py3-none-any.whl.metadata'
    """
    return f"{file_key}{METADATA_SUFFIX}"


def page_key(project: str | None, kind: PageKind) -> str:
    """One object of a project's page, or of the root listing (``project`` None).

    >>> page_key("foo", "v1html"), page_key(None, "json")
    ('simple/foo/index.v1html', 'simple/index.json')
    """
    folder = "" if project is None else f"{_segment(project, 'project')}/"
    return f"{SIMPLE_PREFIX}{folder}{PAGE_OBJECTS[kind]}"


def page_json_key(project: str) -> str:
    return page_key(project, "json")


def page_html_key(project: str) -> str:
    return page_key(project, "html")


def html_twins(html_key: str) -> tuple[str, str]:
    """Each HTML page is stored twice, byte for byte: as ``index.html`` (served as ``text/html``)
    and as ``index.v1html`` (served as ``application/vnd.pypi.simple.v1+html``), because a static
    origin (S3 behind CloudFront) can only send the Content-Type an object was stored with.

    >>> html_twins("simple/foo/index.html")
    ('simple/foo/index.html', 'simple/foo/index.v1html')
    """
    html, v1html = PAGE_OBJECTS["html"], PAGE_OBJECTS["v1html"]
    assert html_key.endswith(html), html_key
    return html_key, html_key.removesuffix(html) + v1html


def gzip_key(key: str) -> str:
    """Where a page's gzip variant is stored.

    >>> gzip_key("simple/foo/index.json")
    'simple/foo/index.json.gz'
    """
    assert key.startswith((SIMPLE_PREFIX, VIEWS_PREFIX)), key
    assert key.rsplit("/", 1)[-1] in _PAGE_NAMES, key
    return key + GZIP_SUFFIX


def project_site_key(project: str) -> str:
    """A project's page for people (``/project/<name>/``).

    >>> project_site_key("foo")
    'site/project/foo/index.html'
    """
    return f"{SITE_PROJECT_PREFIX}{_segment(project, 'project')}/{SITE_PAGE}"


def release_key(project: str, version: str) -> str:
    """Where a release's rendered description lives (written once, never served by a route).

    >>> release_key("foo", "1.0+cpu")
    'site/project/foo/1.0%2Bcpu.json'
    """
    return f"{SITE_PROJECT_PREFIX}{_segment(project, 'project')}/{_quoted(version)}.json"


def provenance_key(project: str, filename: str) -> str:
    """Where a file's PEP 740 provenance is stored: beside the index's pages, never under
    ``packages/`` (whose objects are distributions).

    >>> provenance_key("foo", "foo-1.0.tar.gz")
    'integrity/foo/foo-1.0.tar.gz/provenance.json'
    """
    filename = _segment(filename, "filename")
    return f"{INTEGRITY_PREFIX}{_segment(project, 'project')}/{filename}/{PROVENANCE_NAME}"


def held_files_key(project: str, digest: str) -> str:
    """Where the file entries of a quarantined project's page are kept, by their SHA-256.

    >>> held_files_key("foo", "ab" * 32)[:15]
    'held/foo/ababab'
    """
    return f"{HELD_PREFIX}{_segment(project, 'project')}/{_segment(digest, 'digest')}.json"


def namespace_key(namespace: str | None) -> str:
    """What ``/simple/namespace/<name>`` serves, or (``namespace`` None) ``/simple/namespaces``.

    >>> namespace_key("acme"), namespace_key(None)
    ('namespaces/acme/index.json', 'namespaces/index.json')
    """
    if namespace is None:
        return NAMESPACE_LIST_KEY
    return f"{NAMESPACES_PREFIX}{_segment(namespace, 'namespace')}/{NAMESPACE_PAGE}"


def view_policy_key(view: str) -> str:
    """A view's policy (``skypi view add``; docs/views.md).

    >>> view_policy_key("safe")
    'views/safe/policy.json'
    """
    return f"{VIEWS_PREFIX}{_segment(view, 'view')}/{VIEW_POLICY}"


def policy_view(key: str) -> str | None:
    """The view whose policy ``key`` is (None: no view's policy, such as a key written by hand
    with a name no view has).

    >>> policy_view("views/safe/policy.json"), policy_view("views/../policy.json")
    ('safe', None)
    """
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != VIEWS_PREFIX or parts[2] != VIEW_POLICY:
        return None
    # a view name is written as a normalized project name is (skypi.core.views.view_name)
    return parts[1] if _PROJECT.fullmatch(parts[1]) and len(parts[1]) <= 64 else None


def view_key(view: str, key: str) -> str:
    """Where a view keeps what the private index keeps under ``key``: its pages as
    ``simple/...`` (the root listing and each project's, with their twins and gzip variants),
    its cached files as ``files/<project>/<filename>``.

    >>> view_key("safe", page_key("foo", "json")), view_key("safe", "files/foo/foo-1.0.tar.gz")
    ('views/safe/simple/foo/index.json', 'views/safe/files/foo/foo-1.0.tar.gz')
    """
    return f"{VIEWS_PREFIX}{_segment(view, 'view')}/{key}"


def view_made_key(view: str, pin: str | None, key: str) -> str:
    """Where the edge sends a view's answer made for each request: its root listing (``key``
    the private root's object) or a page of its form pinned at ``pin``. Never stored.

    >>> view_made_key("safe", None, page_key(None, "json"))
    'view/safe/simple/index.json'
    >>> view_made_key("safe", "2026-11-01", page_key("foo", "html"))
    'view/safe@2026-11-01/simple/foo/index.html'
    """
    folder = _segment(view, "view") + (f"@{_segment(pin, 'pin')}" if pin else "")
    return f"{VIEW_MADE_PREFIX}{folder}/{key}"


def view_file_key(view: str, project: str, filename: str) -> str:
    """An upstream file a view cached (and its ``.metadata``, beside it).

    >>> view_file_key("safe", "foo", "foo-1.0.tar.gz")
    'views/safe/files/foo/foo-1.0.tar.gz'
    """
    rest = f"{_segment(project, 'project')}/{_segment(filename, 'filename')}"
    return view_key(view, f"{VIEW_FILES}/{rest}")


def view_files_folder(view: str, project: str) -> str:
    """The folder of the upstream files a view cached of ``project`` (listed to delete those
    no form of the view lists any more).

    >>> view_files_folder("safe", "foo")
    'views/safe/files/foo/'
    """
    return view_key(view, f"{VIEW_FILES}/{_segment(project, 'project')}/")


def view_upstream_key(view: str, project: str) -> str:
    """The upstream page a view's page of ``project`` was last made from (with its ETag).

    >>> view_upstream_key("safe", "foo")
    'views/safe/upstream/foo.json'
    """
    return view_key(view, f"{VIEW_UPSTREAM}/{_segment(project, 'project')}.json")


def root_pending_key(project: str) -> str:
    """A project's pending change to the root listing.

    >>> root_pending_key("foo")
    'pending/root/foo.json'
    """
    return f"{ROOT_PENDING_PREFIX}{_segment(project, 'project')}.json"


def _quoted(text: str) -> str:
    return quote(text, safe="")


# -- recognising ----------------------------------------------------------------------------------

_PAGE_NAMES: Final = frozenset(PAGE_OBJECTS.values())
_KINDS: Final[Mapping[str, PageKind]] = {name: kind for kind, name in PAGE_OBJECTS.items()}
# A normalized project name (PEP 503 as ``packaging.utils.canonicalize_name`` writes a valid
# name): ASCII letters and digits in runs joined by single dashes.
_PROJECT: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A SHA-256 as the index writes and takes one: 64 lowercase hex digits (a held-files key's
# digest, the hash an upload or one of its parts declares).
SHA256_HEX: Final = "[0-9a-f]{64}"
_DIGEST: Final = re.compile(SHA256_HEX)


def is_sha256(text: str) -> bool:
    """Whether ``text`` is a SHA-256 written as the index writes one.

    >>> is_sha256("ab" * 32), is_sha256("AB" * 32), is_sha256("ab" * 31)
    (True, False, False)
    """
    return _DIGEST.fullmatch(text) is not None


def is_project(text: str) -> bool:
    """Whether ``text`` is a normalized project name, the only kind a key is made with.

    >>> is_project("foo-bar"), is_project("Foo"), is_project("foo.bar"), is_project("fóo")
    (True, False, False, False)
    """
    return _PROJECT.fullmatch(text) is not None


class Recognised(NamedTuple):
    """What a key is: its family, its project (None where it has none: the root listing, the
    landing page, an auth record, or a distribution a folder keeps outside a project's folder),
    and its name in the family (a filename, a version, a page object, a record's key)."""

    family: Family
    project: str | None
    name: str
    gzipped: bool = False  # a page's gzip variant

    @property
    def page_kind(self) -> PageKind | None:
        """Which object of a page (or of the root listing) the key is."""
        if self.family in (PROJECT_PAGE, ROOT_LISTING, VIEW_PAGE, VIEW_ROOT):
            return _KINDS[self.name]
        return None


def recognise(key: str) -> Recognised | None:
    """The family (and project) of ``key``, or None for a key no builder makes.

    >>> recognise("simple/foo/index.json.gz")
    Recognised(family=<Family project page>, project='foo', name='index.json', gzipped=True)
    >>> recognise("simple/Foo/index.json") is None, recognise("packages/../x") is None
    (True, True)
    """
    parts = key.split("/")
    if any(p in {"", ".", ".."} for p in parts):
        return None
    top, rest = f"{parts[0]}/", parts[1:]
    reader = _READERS.get(top)
    return reader(rest) if reader is not None and rest else None


def _distribution(rest: list[str]) -> Recognised | None:
    """``packages/<project>/<file>``; a folder index may keep files anywhere under it (then
    the project is the filename's, ``skypi.indexer.changes``), never dot-files."""
    if any(p.startswith(".") for p in rest):
        return None
    project = rest[0] if len(rest) == 2 and is_project(rest[0]) else None
    filename = rest[-1]
    if filename.endswith(METADATA_SUFFIX) and filename != METADATA_SUFFIX:
        return Recognised(METADATA, project, filename.removesuffix(METADATA_SUFFIX))
    return Recognised(DISTRIBUTION, project, filename)


def _page(rest: list[str]) -> Recognised | None:
    name = rest[-1]
    gzipped = name.endswith(GZIP_SUFFIX)
    name = name.removesuffix(GZIP_SUFFIX) if gzipped else name
    if name not in _PAGE_NAMES:
        return None
    if len(rest) == 1:
        return Recognised(ROOT_LISTING, None, name, gzipped)
    if len(rest) == 2 and is_project(rest[0]):
        return Recognised(PROJECT_PAGE, rest[0], name, gzipped)
    return None


def _site(rest: list[str]) -> Recognised | None:
    if rest == [SITE_PAGE]:
        return Recognised(LANDING, None, rest[0])
    if rest == ["index.json"]:
        return Recognised(LEGACY_LANDING, None, rest[0])
    if len(rest) != 3 or rest[0] != "project" or not is_project(rest[1]):
        return None
    if rest[2] == SITE_PAGE:
        return Recognised(PROJECT_SITE, rest[1], rest[2])
    quoted = rest[2].removesuffix(".json")
    if quoted != rest[2] and quoted and _quoted(unquote(quoted)) == quoted:
        return Recognised(RELEASE, rest[1], unquote(quoted))
    return None


def _provenance(rest: list[str]) -> Recognised | None:
    if len(rest) == 3 and is_project(rest[0]) and rest[2] == PROVENANCE_NAME:
        return None if rest[1].startswith(".") else Recognised(PROVENANCE, rest[0], rest[1])
    return None


def _auth(rest: list[str]) -> Recognised | None:
    key = AUTH_PREFIX + "/".join(rest)
    return Recognised(AUTH_RECORD, None, key) if key in AUTH_RECORDS else None


def _held(rest: list[str]) -> Recognised | None:
    digest = rest[-1].removesuffix(".json")
    if len(rest) == 2 and is_project(rest[0]) and _DIGEST.fullmatch(digest) and digest != rest[-1]:
        return Recognised(HELD_FILES, rest[0], digest)
    return None


def _local(rest: list[str]) -> Recognised | None:
    key = LOCAL_PREFIX + "/".join(rest)
    return Recognised(LOCAL_STATE, None, key) if key == FINGERPRINTS_KEY else None


def _namespaces(rest: list[str]) -> Recognised | None:
    key = NAMESPACES_PREFIX + "/".join(rest)
    if key == NAMESPACE_RECORDS_KEY:
        return Recognised(NAMESPACE_RECORDS, None, key)
    if key == NAMESPACE_LIST_KEY:
        return Recognised(NAMESPACE_DOCUMENT, None, NAMESPACE_PAGE)
    if len(rest) == 2 and is_project(rest[0]) and rest[1] == NAMESPACE_PAGE:
        return Recognised(NAMESPACE_DOCUMENT, None, rest[0])
    return None


def _views(rest: list[str]) -> Recognised | None:
    """``views/<view>/...``: a view's policy, pages, upstream pages and cached files; and the
    views' due record."""
    if rest == [VIEW_DUE_KEY.removeprefix(VIEWS_PREFIX)]:
        return Recognised(VIEW_DUE, None, VIEW_DUE_KEY)
    if len(rest) < 2 or not is_project(rest[0]):
        return None
    view, what = rest[0], rest[1:]
    if what == [VIEW_POLICY]:
        return Recognised(VIEW_POLICY_RECORD, None, view)
    if what[0] == VIEW_SIMPLE:
        page = _page(what[1:]) if len(what) > 1 else None
        if page is None:
            return None
        family = VIEW_ROOT if page.family is ROOT_LISTING else VIEW_PAGE
        return page._replace(family=family)
    if what[0] == VIEW_UPSTREAM and len(what) == 2:
        project = what[1].removesuffix(".json")
        if project != what[1] and is_project(project):
            return Recognised(VIEW_UPSTREAM_PAGE, project, view)
        return None
    if what[0] == VIEW_FILES and len(what) == 3 and is_project(what[1]):
        return None if what[2].startswith(".") else Recognised(VIEW_FILE, what[1], what[2])
    return None


def _osv(rest: list[str]) -> Recognised | None:
    key = OSV_PREFIX + "/".join(rest)
    return Recognised(OSV_DATA, None, key) if key == OSV_KEY else None


def _pending(rest: list[str]) -> Recognised | None:
    if PENDING_PREFIX + "/".join(rest) == ROOT_DUE_KEY:
        return Recognised(ROOT_DUE, None, rest[0])
    project = rest[-1].removesuffix(".json")
    if len(rest) == 2 and rest[0] == "root" and project != rest[-1] and is_project(project):
        return Recognised(ROOT_PENDING, project, project)
    return None


_READERS: Final = {
    PACKAGES_PREFIX: _distribution,
    SIMPLE_PREFIX: _page,
    SITE_PREFIX: _site,
    INTEGRITY_PREFIX: _provenance,
    AUTH_PREFIX: _auth,
    HELD_PREFIX: _held,
    LOCAL_PREFIX: _local,
    NAMESPACES_PREFIX: _namespaces,
    VIEWS_PREFIX: _views,
    OSV_PREFIX: _osv,
    PENDING_PREFIX: _pending,
}


def family_of(key: str) -> Family | None:
    found = recognise(key)
    return found.family if found is not None else None


# -- the edge's KeyValueStore ------------------------------------------------------------------

# The CloudFront Function reads two kinds of keys from its KeyValueStore: a token's SHA-256 (64
# lowercase hex digits, ``skypi.core.tokens``), and a quarantined project's record under this
# prefix, whose ``/`` no hex digest holds: the two never collide. The edge refuses every file
# and ``.metadata`` of a project with a record (PEP 792), before its cache is looked in.
QUARANTINE_RECORD_PREFIX: Final = "quarantined/"
QUARANTINE_RECORD_VALUE: Final = "quarantined"  # what the edge reads is the key's presence


def quarantine_record_key(project: str) -> str:
    """The edge's record of a quarantined project (a normalized name).

    >>> quarantine_record_key("foo-bar")
    'quarantined/foo-bar'
    """
    if not is_project(project):
        raise ValueError(f"not a normalized project name: {project!r}")
    return QUARANTINE_RECORD_PREFIX + project


def quarantined_project(record_key: str) -> str | None:
    """The project a KeyValueStore key records as quarantined; None for any other key (a
    token's hash).

    >>> quarantined_project("quarantined/foo-bar"), quarantined_project("ab" * 32)
    ('foo-bar', None)
    """
    project = record_key.removeprefix(QUARANTINE_RECORD_PREFIX)
    return project if project != record_key and is_project(project) else None


# -- grants -------------------------------------------------------------------------------------


def _covers(pattern: str, other: str) -> bool:
    """Whether IAM's ``pattern`` matches every key ``other`` matches (``*`` only at its end, or
    as in ``packages/*.metadata`` under ``packages/*``)."""
    return pattern != other and pattern.endswith("*") and other.startswith(pattern[:-1])


def grants(role: Role, access: Access) -> tuple[str, ...]:
    """The resource patterns ``role`` needs for ``access``: each family's that it may, in the
    layout's order, without one another pattern already covers.

    >>> grants("indexer", "delete")
    ('packages/*.metadata', 'views/*/simple/*', 'pending/*')
    """
    wanted = list(dict.fromkeys(f.grant for f in FAMILIES if f.may(role, access)))
    return tuple(p for p in wanted if not any(_covers(q, p) for q in wanted))


def granted_patterns() -> tuple[str, ...]:
    """Every pattern some role is granted: what cdk-nag's wildcard acknowledgements name."""
    every = (p for role in ROLES for access in ACCESSES for p in grants(role, access))
    return tuple(dict.fromkeys(every))
