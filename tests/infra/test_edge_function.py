"""The CloudFront Function under node, as deployed (minified, placeholders filled), against the
same edge vectors the Python edge passes, and within CloudFront Functions' limits."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from infra.cdn import (
    API_ORIGIN_ID,
    BUCKET_ORIGIN_ID,
    BUCKET_PATHS,
    MAX_FUNCTION_BYTES,
    VIEW_PATH,
    edge_source,
    view_edge_source,
)
from skypi.core import keys
from skypi.core.edge import authorization_count, decide, origin_uri
from skypi.core.http import (
    MAX_LAMBDA_REQUEST_BYTES,
    content_encoding_for_key,
    content_type_for_key,
)
from skypi.core.keys import QUARANTINE_RECORD_VALUE, SITE_PREFIX, quarantine_record_key
from skypi.core.tokens import TokenRecord
from skypi.core.viewedge import decide_view, view_origin_key
from tests.dists import wheel_name
from tests.test_edge_vectors import expand_credentials, vector_token

T = TypeVar("T")
ROOT = Path(__file__).parents[2]
SPEC = json.loads((ROOT / "spec" / "edge-vectors.json").read_text())
NODE = Path(sys.executable).with_name("node")
ANSWERED_BY_THE_FUNCTION = {301, 400, 401, 403, 405, 503}
# what may be read from the bucket (namespaces/: PEP 752's documents, never its records)
BUCKET_KEY_PREFIXES = ("simple/", "packages/", SITE_PREFIX, "namespaces/")
FROM_A_STORED_OBJECT = {200, 206, 304, 416}


def generate(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """``count`` examples of ``strategy``, the same ones every run: they are gathered first so
    that the function runs once, under one node, for all of them."""
    batch: list[T] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def gather(example: T) -> None:
        batch.append(example)

    gather()
    return batch


def stored_keys() -> set[str]:
    """What the vectors' fixture stores: the wheels, their .metadata, the pages with their
    gzip variants, the pages for people, and the files planted beside them."""
    pages = [f"index.{ext}" for ext in ("html", "v1html", "json")]
    pages += [f"{page}.gz" for page in pages]
    keys = {f"simple/{page}" for page in pages}
    for wheel in SPEC["fixture"]["wheels"]:
        project = canonicalize_name(wheel["name"])
        name = wheel_name(wheel["name"], wheel["version"])
        keys |= {f"packages/{project}/{name}", f"packages/{project}/{name}.metadata"}
        keys |= {f"simple/{project}/{page}" for page in pages}
        keys.add(f"{SITE_PREFIX}project/{project}/index.html")  # the pages for people
    return keys | {f"{SITE_PREFIX}index.html"} | set(SPEC["fixture"].get("planted", {}))


@dataclass(frozen=True)
class Outcome:
    """What became of a request at CloudFront: answered by the function, or sent on to the
    bucket (under ``key``) or to the API, by the behaviour its path selects."""

    status: int | None = None  # the function's own answer
    location: str | None = None
    challenge: bool = False  # a 401 with WWW-Authenticate
    origin: str | None = None  # "bucket", "api" or "views" (the views' group) when sent on
    key: str | None = None


# The views' behaviour sends what its function lets through to its origin group: the bucket,
# then the view Lambda (infra/cdn.py).
VIEWS = "views"


def behaviour_origin(path: str) -> str:
    """CloudFront's behaviour for the viewer's path: case-sensitive patterns, first match."""
    if fnmatchcase(path, VIEW_PATH):
        return VIEWS
    return BUCKET_ORIGIN_ID if any(fnmatchcase(path, p) for p in BUCKET_PATHS) else API_ORIGIN_ID


def outcome(event: dict[str, Any], result: dict[str, Any]) -> Outcome:
    if "statusCode" in result:
        headers = result.get("headers", {})
        return Outcome(
            status=result["statusCode"],
            location=headers.get("location", {}).get("value"),
            challenge="www-authenticate" in headers,
        )
    origin = result.get("selectedOrigin") or behaviour_origin(event["request"]["uri"])
    if origin == VIEWS:  # never another origin: that would skip the group's failover
        assert "selectedOrigin" not in result
        key = unquote(result["uri"][1:])
        assert result["uri"] == origin_uri(key), (event["request"]["uri"], result["uri"])
        return Outcome(origin=VIEWS, key=key)
    assert origin in {BUCKET_ORIGIN_ID, API_ORIGIN_ID}, origin
    if origin == API_ORIGIN_ID:
        assert result["uri"] == event["request"]["uri"]  # the API sees what the viewer sent
        return Outcome(origin="api")
    if result.get("selectedOrigin"):  # a bucket behaviour's cache policy forwards no query
        assert result["querystring"] == {}
    key = unquote(result["uri"][1:])  # S3 decodes the path
    # One spelling per key, whatever the viewer's: CloudFront's cache key, and the path the
    # invalidation of that key names (skypi.core.edge.origin_uri).
    assert result["uri"] == origin_uri(key), (event["request"]["uri"], result["uri"])
    return Outcome(origin="bucket", key=key)


def _querystring(raw: str) -> dict[str, Any]:
    """CloudFront's shape: name -> {value}, repeated names also under multiValue."""
    result: dict[str, Any] = {}
    for part in filter(None, raw.split("&")):
        name, _, value = part.partition("=")
        if name in result:
            entry = result[name]
            entry.setdefault("multiValue", [{"value": entry["value"]}]).append({"value": value})
        else:
            result[name] = {"value": value}
    return result


def _header(value: str | list[str]) -> dict[str, Any]:
    """CloudFront's shape for a header: its first value, and every value under multiValue
    when it came more than once."""
    if isinstance(value, str):
        return {"value": value}
    return {"value": value[0], "multiValue": [{"value": v} for v in value]}


def _event(
    method: str, path: str, query: str, headers: dict[str, str] | dict[str, str | list[str]]
) -> dict[str, Any]:
    return {
        "version": "1.0",
        "context": {"eventType": "viewer-request"},
        "viewer": {"ip": "203.0.113.10"},
        "request": {
            "method": method,
            "uri": path,
            "querystring": _querystring(query),
            "headers": {k.lower(): _header(v) for k, v in headers.items()},
            "cookies": {},
        },
    }


def mirrored_tokens() -> dict[str, str]:
    """The KeyValueStore as the sync function leaves it: hash -> edge value, for every fixture
    token that was not revoked."""
    store = {}
    for name, spec in SPEC["fixture"]["tokens"].items():
        if spec.get("revoked"):
            continue
        record = TokenRecord.create(
            vector_token(name),
            name=name,
            scopes=set(spec["scopes"]),
            projects=set(spec["projects"]) if spec["projects"] else None,
            namespaces=set(spec["namespaces"]) if spec.get("namespaces") else None,
            expires=datetime(2020, 1, 1, tzinfo=UTC) if spec.get("expired") else None,
        )
        store[record.hash] = record.edge_value()
    return store


def mirrored_records() -> dict[str, str]:
    """The whole KeyValueStore: the tokens, and a record of each quarantined project, as
    ``skypi status PROJECT quarantined`` leaves them (skypi.store.kvs)."""
    quarantined = {
        quarantine_record_key(project): QUARANTINE_RECORD_VALUE
        for project in SPEC["fixture"].get("quarantined", [])
    }
    return mirrored_tokens() | quarantined


def function_source(mode: str, path: str) -> str:
    """The code CloudFront runs on a viewer request for ``path`` in read mode ``mode``: the
    views' function on their behaviour (/view/*), the main one everywhere else."""
    source = view_edge_source if fnmatchcase(path, VIEW_PATH) else edge_source
    return source(mode, "kvs-under-test")


def run_jobs(
    jobs: list[tuple[str, list[dict[str, Any]]]], kvs: dict[str, str] | None = None
) -> list[list[dict[str, Any]]]:
    """Each (function code, events) job, all in one node process."""
    payload = {
        "jobs": [{"source": source, "events": events} for source, events in jobs],
        "kvs": kvs or {},
    }
    result = subprocess.run(
        [str(NODE), str(ROOT / "tests" / "infra" / "run_edge_function.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return list(json.loads(result.stdout))


def run_function(
    events: list[dict[str, Any]], mode: str = "public", kvs: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    return run_by_mode([mode] * len(events), events, kvs)


def run_by_mode(
    modes: list[str], events: list[dict[str, Any]], kvs: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """``events[i]`` through the function its path's behaviour runs, in read mode
    ``modes[i]``, in one node process."""
    sources = [function_source(m, e["request"]["uri"]) for m, e in zip(modes, events, strict=True)]
    kinds = sorted(set(sources))
    chosen = {source: [i for i, s in enumerate(sources) if s == source] for source in kinds}
    answers = run_jobs([(source, [events[i] for i in chosen[source]]) for source in kinds], kvs)
    results: dict[int, dict[str, Any]] = {}
    for source, answered in zip(kinds, answers, strict=True):
        results.update(zip(chosen[source], answered, strict=True))
    return [results[i] for i in range(len(events))]


def _listed(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


def _vector_event(vector: dict[str, Any]) -> dict[str, Any]:
    request = vector["request"]
    event = _event(
        request["method"],
        request["path"],
        request["query"],
        {
            k: [expand_credentials(x) for x in h] if isinstance(h, list) else expand_credentials(h)
            for k, h in request["headers"].items()
        },
    )
    if vector["expect"].get("fault") == "status":  # the runner's store fails for this one
        event["skypiKvsFails"] = True
    return event


@pytest.fixture(scope="module")
def vector_events() -> list[dict[str, Any]]:
    return [_vector_event(v) for v in SPEC["vectors"]]


@pytest.fixture(scope="module")
def vector_results(vector_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    modes = [v.get("mode", "public") for v in SPEC["vectors"]]
    return run_by_mode(modes, [dict(e) for e in vector_events], mirrored_records())


@pytest.mark.parametrize(
    "index", range(len(SPEC["vectors"])), ids=[v["name"] for v in SPEC["vectors"]]
)
def test_vector(
    index: int, vector_results: list[dict[str, Any]], vector_events: list[dict[str, Any]]
) -> None:
    """Every vector's status, whoever gives it: the function's own answer must be the status
    expected (a refusal that lets the request through fails); what it sends on goes where the
    vector says, and a key sent to the bucket is stored exactly when the status says so."""
    vector = SPEC["vectors"][index]
    request, expect = vector["request"], vector["expect"]
    got = outcome(vector_events[index], vector_results[index])
    if "withheld" in expect:  # refused by the function itself, before its cache: or sent on
        assert (got.origin is None) == expect["withheld"], got
    if fnmatchcase(request["path"], VIEW_PATH):
        _view_vector(vector, got)
        return
    if expect.get("origin") == "api":
        assert got.origin == "api", got
        return
    python = decide(
        request["method"],
        request["path"],
        request["query"],
        request["headers"].get("accept"),
        request["headers"].get("accept-encoding"),
        authorization_count(_listed(request["headers"].get("authorization"))),
    )
    if got.origin is None:  # the function answered
        assert got.status == expect["status"], got
        # decide() knows no credentials, nor any project's status
        if expect["status"] not in {401, 403} and not expect.get("withheld", "fault" in expect):
            assert got.status == python.status
        assert got.challenge == (expect["status"] == 401)
        if got.status == 301:
            assert got.location == expect["headers"].get("location", python.location)
        return
    assert expect["status"] not in ANSWERED_BY_THE_FUNCTION, got
    assert got.origin == "bucket", got
    if "uri" in expect:  # the cache key, whatever the viewer's spelling
        assert vector_results[index]["uri"] == expect["uri"]
    assert got.key is not None
    assert got.key.startswith(BUCKET_KEY_PREFIXES), got
    assert got.key == python.key
    if expect["status"] == 404:
        assert got.key not in stored_keys(), got
        return
    assert expect["status"] in FROM_A_STORED_OBJECT
    assert got.key in stored_keys(), got
    if expect.get("object"):
        assert got.key == expect["object"]
    expected_type = expect["headers"].get("content-type")
    if expected_type and expect["status"] in {200, 206}:
        assert content_type_for_key(got.key) == expected_type  # what S3 will send for it
    if "content-encoding" in expect["headers"]:  # as stored: S3 sends it, CloudFront keeps it
        assert content_encoding_for_key(got.key) == expect["headers"]["content-encoding"]


def _view_vector(vector: dict[str, Any], got: Outcome) -> None:
    """A vector under /view/: the views' function answers as skypi.core.viewedge decides, or
    sends the read to the views' origin group under the key view_origin_key names: the bucket
    answers when it holds that object, the view Lambda otherwise (a page not made yet, what a
    view makes for each request), with the status the vector expects of the read path."""
    request, expect = vector["request"], vector["expect"]
    headers = request["headers"]
    found = decide_view(
        request["method"],
        request["path"],
        request["query"],
        headers.get("accept"),
        headers.get("accept-encoding"),
    )
    if got.origin is None:  # the function answered
        assert got.status == expect["status"], got
        assert got.challenge == (expect["status"] == 401)
        several = authorization_count(_listed(headers.get("authorization"))) > 1
        if expect["status"] not in {401, 403} and not expect.get("withheld") and not several:
            assert got.status == found.answer.status
        if got.status == 301:
            assert got.location == expect["headers"].get("location", found.answer.location)
        assert "view-key" not in expect, got
        return
    assert got.origin == VIEWS, got
    assert got.key == expect["view-key"] == view_origin_key(found), got
    assert keys.recognise(got.key) is not None or got.key.startswith(keys.VIEW_MADE_PREFIX)
    if got.key in stored_keys():  # the bucket has it: no failover
        assert expect["status"] in FROM_A_STORED_OBJECT
        assert expect.get("object") == got.key
    else:  # the bucket misses (403/404): the view Lambda answers
        assert keys.recognise(got.key) is None or keys.family_of(got.key) in {
            keys.VIEW_PAGE,
            keys.VIEW_FILE,
        }


def test_uploads_over_lambdas_limit_are_refused_at_the_edge() -> None:
    def upload(length: int) -> dict[str, Any]:
        return _event("POST", "/legacy/", "", {"content-length": str(length)})

    small, big, admin, root = run_function(
        [
            upload(MAX_LAMBDA_REQUEST_BYTES),
            upload(MAX_LAMBDA_REQUEST_BYTES + 1),
            _event("POST", "/api/projects/x/yank", "", {"content-length": "99999999"}),
            _event("POST", "/", "", {"content-length": str(MAX_LAMBDA_REQUEST_BYTES + 1)}),
        ]
    )
    assert small["uri"] == "/legacy/"  # through to the API
    assert big["statusCode"] == 413
    assert "aws s3 cp" in big["body"]["data"]
    assert admin["uri"] == "/api/projects/x/yank"
    assert root["statusCode"] == 413  # pypiserver's upload URL has the same ceiling


def test_an_upload_without_a_length_is_refused_at_the_edge() -> None:
    """A chunked upload declares no Content-Length, so the 413 above cannot see its size,
    and API Gateway would refuse it past 6 MB with an opaque error of its own."""
    chunked, malformed, admin = run_function(
        [
            _event("POST", "/legacy/", "", {"transfer-encoding": "chunked"}),
            _event("POST", "/legacy", "", {"content-length": "12e9"}),
            _event("POST", "/api/uploads", "", {"transfer-encoding": "chunked"}),
        ]
    )
    assert chunked["statusCode"] == 411
    assert "Content-Length" in chunked["body"]["data"]
    assert malformed["statusCode"] == 411
    assert admin["uri"] == "/api/uploads"  # small JSON bodies: API Gateway's own limits hold


@pytest.mark.parametrize("mode", ["public", "private"])
def test_trusted_publishing_and_provenance_pass_to_the_api_unauthenticated(mode: str) -> None:
    paths = [
        ("GET", "/_/oidc/audience"),
        ("POST", "/_/oidc/mint-token"),
        ("POST", "/_/oidc/burn-token"),
        ("GET", "/integrity/demo/1.0/demo-1.0-py3-none-any.whl/provenance"),
    ]
    results = run_function([_event(m, p, "", {}) for m, p in paths], mode=mode)
    assert [r.get("uri") for r in results] == [p for _, p in paths]
    assert all("statusCode" not in r for r in results)


def test_paths_outside_the_index_never_reach_the_bucket() -> None:
    results = run_function(
        [_event("GET", path, "", {}) for path in ("/", "/auth/tokens.json", "/packages/", "/x")]
    )
    assert results[0]["uri"] == "/site/index.html"  # the landing page, never the bucket's root
    assert [r.get("statusCode") for r in results[1:]] == [404, 404, 404]


def test_function_fits_cloudfront_functions_limits() -> None:
    """What deploys is minified at synth and fits CloudFront Functions' 10 KB quota, with room
    for a real KeyValueStore id (36 characters); it is the code the vectors above ran."""
    for mode in ("public", "private"):
        source = edge_source(mode, "kvs-under-test")
        assert len(source.encode()) + 64 <= MAX_FUNCTION_BYTES
        assert "skypi's edge rules" not in source  # the comments stay in the repository
        assert "async function handler(" in source
        assert not re.search(r"__[A-Z_]+__", source)  # every placeholder filled
        # cloudfront-js-2.0 offers only its own modules; no network, timers or dynamic code.
        imports = re.findall(r"^import .*$", source, re.MULTILINE)
        assert imports == ["import cf from 'cloudfront';", "import crypto from 'crypto';"]
        for forbidden in (
            "require(",
            "export ",
            "module.exports",
            "fetch(",
            "setTimeout",
            "XMLHttpRequest",
            "eval(",
            "new Function",
            "=>",  # ES5 output: the minifier adds no syntax the runtime may lack
        ):
            assert forbidden not in source, forbidden
        assert source.isascii()


def _edge_sources() -> str:
    """The functions' parts as written (infra/cdn.py assembles each function from them)."""
    return "\n".join(
        (ROOT / "infra" / "edge" / name).read_text()
        for name in ("common.js", "viewer-request.js", "view-request.js")
    )


def test_the_functions_route_table_is_the_packages_own() -> None:
    """Which paths are reads and which the API's is written once (skypi.core.constants): the
    function's source holds placeholders for it, and the deployed code the package's values."""
    from skypi.core import constants

    source = _edge_sources()
    tables = {
        "API_PATHS": sorted({*constants.API_PATHS, constants.HEALTH_PATH}),
        "API_PREFIXES": list(constants.API_PREFIXES),
        "API_POSTS": sorted(constants.API_POSTS),
        "READ_PATHS": sorted(constants.READ_PATHS),
        "READ_PREFIXES": list(constants.READ_PREFIXES),
        "SDIST_EXTENSIONS": list(constants.SDIST_EXTENSIONS),
    }
    deployed = edge_source()
    for name, values in tables.items():
        assert f"var {name} = __{name}__;" in source  # no copy of the table in the source
        # terser prints the arrays with double quotes (and renames the top-level names)
        assert f"={json.dumps(values, separators=(',', ':'))}" in deployed, name
    assert tuple(f"{p}*" for p in constants.READ_PREFIXES) == BUCKET_PATHS


def test_the_functions_keys_are_the_layouts() -> None:
    """Where the function sends each read is the key layout's (skypi.core.keys): the source
    spells no key, and the deployed code carries the layout's prefixes and page objects."""
    from skypi.core import keys

    source = _edge_sources()
    code = "\n".join(line for line in source.splitlines() if not line.startswith("//"))
    for literal in ("'simple/", "'site/", "'packages/", "'index.", "'.gz'", "'views/"):
        assert literal not in code, literal
    assert "var KEYS = __KEYS__;" in source
    assert "var VIEW_KEYS = __VIEW_KEYS__;" in source
    deployed = edge_source() + view_edge_source()
    for value in (
        keys.PACKAGES_PREFIX,
        keys.SIMPLE_PREFIX,
        keys.GZIP_SUFFIX,
        keys.LANDING_KEY,
        keys.SITE_PROJECT_PREFIX,
        *keys.PAGE_OBJECTS.values(),
        keys.VIEWS_PREFIX,
        keys.VIEW_MADE_PREFIX,
    ):
        assert json.dumps(value) in deployed, value
    assert (
        keys.project_site_key("foo-bar") == keys.SITE_PROJECT_PREFIX + "foo-bar/" + keys.SITE_PAGE
    )


def test_every_object_the_vectors_read_is_a_key_of_the_layout() -> None:
    """The shared vectors read the layout's keys: each object is the family its path says."""
    from skypi.core import keys

    expected = {
        "/simple/": {keys.PROJECT_PAGE, keys.ROOT_LISTING, keys.NAMESPACE_DOCUMENT},
        "/packages/": {keys.DISTRIBUTION, keys.METADATA},
        "/project/": {keys.PROJECT_SITE},
        # a view's answer's body: a name published here is served its private page and files
        "/view/": {keys.PROJECT_PAGE, keys.DISTRIBUTION},
        "/": {keys.LANDING},
    }
    seen = set()
    for vector in SPEC["vectors"]:
        sent = vector["expect"].get("view-key")  # the stored view's, or where nothing is stored
        if sent and not sent.startswith(keys.VIEW_MADE_PREFIX):
            family = keys.family_of(sent)
            assert family in {keys.VIEW_PAGE, keys.VIEW_FILE, keys.DISTRIBUTION}, sent
        elif sent:
            assert keys.recognise(sent) is None, sent
        key = vector["expect"].get("object")
        if not key:
            continue
        found = keys.recognise(key)
        assert found is not None, key
        path = vector["request"]["path"]
        prefix = next((p for p in expected if p != "/" and path.startswith(p)), "/")
        assert found.family in expected[prefix], (path, key)
        seen.add(found.family)
    assert seen == set().union(*expected.values())
