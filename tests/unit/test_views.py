"""Views: the policy's format, OSV matching, and the policy as a pure function, rule by rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from skypi.core.errors import InvalidRequest
from skypi.core.namespaces import Namespace, Namespaces
from skypi.core.osv import OsvData
from skypi.core.render import render_project_html
from skypi.core.viewpolicy import (
    Reason,
    UpstreamError,
    UpstreamPage,
    decide,
    evaluate,
    parse_upstream_page,
)
from skypi.core.views import parse_policy, view_name

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
UP = "http://up.test/simple/"
HASH = "ab" * 32


def policy(**doc: Any) -> Any:
    return parse_policy(
        "safe", {"upstream": UP, **{k.replace("_", "-"): v for k, v in doc.items()}}
    )


def entry(filename: str, age_days: float | None = 30, /, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "filename": filename,
        "url": f"../../files/{filename}",
        "hashes": {"sha256": HASH},
        "size": 10,
    }
    if age_days is not None:
        moment = NOW - timedelta(days=age_days)
        found["upload-time"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return found | extra


def upstream(*files: Any, name: str = "demo", top: dict[str, Any] | None = None) -> UpstreamPage:
    doc = {"meta": {"api-version": "1.4"}, "name": name, "files": list(files), **(top or {})}
    return parse_upstream_page(json.dumps(doc).encode(), f"{UP}{name}/")


# -- the policy's format --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "upstream must be the URL"),
        ({"upstream": "ftp://x/simple/"}, "http:// or https://"),
        ({"upstream": "https://u:p@x/simple/"}, "no credentials"),
        ({"upstream": UP, "cooldown-days": -1}, "cooldown-days must be between"),
        ({"upstream": UP, "cooldown-days": "7"}, "cooldown-days must be a number"),
        ({"upstream": UP, "cooldown-days": True}, "cooldown-days must be a number"),
        ({"upstream": UP, "cooldown-days": 99999}, "at most 3650"),
        ({"upstream": UP, "files": "copy"}, "files must be 'cache' or 'link'"),
        ({"upstream": UP, "deny": "evil"}, "deny must be a list of strings"),
        ({"upstream": UP, "deny": ["evil pkg!"]}, "not a project with optional versions"),
        ({"upstream": UP, "allow": ["x @ https://e/x.whl"]}, "versions only"),
        ({"upstream": UP, "cooldown": 7}, "Unknown setting 'cooldown'"),
        (
            {"upstream": UP, "exception": [{"project": "x", "expires": "2027-01-01"}]},
            "give a reason",
        ),
        ({"upstream": UP, "exception": [{"project": "x", "reason": "r"}]}, "expires is required"),
        (
            {"upstream": UP, "exception": [{"project": "x", "reason": "r", "expires": "soon"}]},
            "must be a date",
        ),
        ({"upstream": UP, "block-advisories": ["bad id!"]}, "not an OSV id"),
        ({"upstream": UP, "file-hosts": "cdn.test"}, "file-hosts must be a list of strings"),
        ({"upstream": UP, "file-hosts": ["https://cdn.test/"]}, "file-hosts takes host names"),
        ({"upstream": UP, "file-hosts": ["cdn.test:x"]}, "file-hosts takes host names"),
        ({"upstream": UP, "file-hosts": ["u@cdn.test"]}, "file-hosts takes host names"),
    ],
)
def test_a_policy_with_a_mistake_is_refused_naming_it(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_policy("safe", doc)


def test_a_policy_round_trips_through_its_stored_form() -> None:
    doc = {
        "upstream": "https://pypi.org/simple",
        "cooldown-days": 7,
        "files": "link",
        "deny": ["evil", "requests<2.20"],
        "allow": [],
        "block-advisories": ["GHSA-2c9f-m4xq-7h3w"],
        "refresh-minutes": 5,
        "exception": [{"project": "Urllib3", "reason": "fix", "expires": "2027-01-01"}],
        "file-hosts": ["Mirror.Example.com:8443"],
    }
    first = parse_policy("safe", doc)
    assert first.file_hosts == {"pypi.org", "files.pythonhosted.org", "mirror.example.com:8443"}
    assert first.upstream == "https://pypi.org/simple/"
    assert first.exceptions[0].project == "urllib3"
    assert parse_policy("safe", json.loads(first.to_json_bytes())) == first


@pytest.mark.parametrize("name", ["Safe", "a_b", "-a", "a--b", "", "x" * 65, "a/b", ".."])
def test_a_view_name_is_a_plain_url_segment(name: str) -> None:
    with pytest.raises(InvalidRequest, match="not a view name"):
        view_name(name)


# -- OSV (reference: the fixture records and their expected matches) ------------------------------

MAL = {
    "schema_version": "1.7.4",
    "id": "MAL-2026-90001",
    "modified": "2026-11-02T09:30:00Z",
    "summary": "Malicious code in acme-utils (PyPI)",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "acme-utils"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            "versions": ["0.0.1", "0.0.2"],
        }
    ],
}
GHSA = {
    "id": "GHSA-2c9f-m4xq-7h3w",
    "modified": "2026-10-03T08:15:00Z",
    "aliases": ["CVE-2026-99999", "PYSEC-2026-999"],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "demo-pkg"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "2.0"}]}],
            "versions": ["1.0", "1.1"],
        }
    ],
}


@pytest.mark.parametrize(
    ("project", "version", "ids"),
    [
        ("acme-utils", "0.0.1", ["MAL-2026-90001"]),
        ("Acme_Utils", "9.9", ["MAL-2026-90001"]),
        ("acme.utils", "0.0.3", ["MAL-2026-90001"]),
        ("demo-pkg", "1.0", ["GHSA-2c9f-m4xq-7h3w"]),
        ("demo-pkg", "1.5", ["GHSA-2c9f-m4xq-7h3w"]),
        ("demo-pkg", "2.0", []),
        ("demo-pkg", "0.9", []),
        ("other", "1.0", []),
    ],
)
def test_osv_records_match_as_the_schema_says(project: str, version: str, ids: list[str]) -> None:
    db = OsvData.from_records([MAL, GHSA])
    assert [a.id for a in db.matching(project, version)] == ids
    assert OsvData.from_json_bytes(db.to_json_bytes()) == db


def test_osv_ecosystem_is_exact_and_withdrawn_records_match_nothing() -> None:
    lower = json.loads(json.dumps(GHSA))
    lower["affected"][0]["package"]["ecosystem"] = "pypi"
    withdrawn = MAL | {"withdrawn": "2026-11-03T00:00:00Z"}
    assert len(OsvData.from_records([lower, withdrawn])) == 0


def test_osv_last_affected_and_reintroduced_ranges() -> None:
    record = {
        "id": "PYSEC-1",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "x"},
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "1.0"},
                            {"last_affected": "1.2"},
                            {"introduced": "3.0"},
                        ],
                    }
                ],
            }
        ],
    }
    db = OsvData.from_records([record])
    hits = {v: bool(db.matching("x", v)) for v in ("0.9", "1.0", "1.2", "1.3", "2.9", "3.0", "9")}
    assert hits == {
        "0.9": False,
        "1.0": True,
        "1.2": True,
        "1.3": False,
        "2.9": False,
        "3.0": True,
        "9": True,
    }


# -- the policy as a function: one rule per row ------------------------------------------------

MAL_DEMO = {
    "id": "MAL-2026-1",
    "summary": "Malicious code in demo",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["3.0"]}],
}
GHSA_DEMO = {
    "id": "GHSA-x",
    "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"}, "versions": ["2.0"]}],
}


@pytest.mark.parametrize(
    ("rules", "file", "reason", "detail"),
    [
        ({}, entry("demo-1.0.tar.gz"), Reason.LISTED, ""),
        ({"cooldown_days": 7}, entry("demo-1.0.tar.gz", 8), Reason.LISTED, ""),
        ({"cooldown_days": 7}, entry("demo-1.0.tar.gz", 1), Reason.COOLDOWN, "listed from"),
        ({"cooldown_days": 7}, entry("demo-1.0.tar.gz", None), Reason.UNTIMED, "no upload time"),
        ({}, entry("demo-1.0.tar.gz", None), Reason.UNTIMED, "no upload time"),
        ({"deny": ["demo<2"]}, entry("demo-1.0.tar.gz"), Reason.DENY_LIST, "demo<2"),
        ({"deny": ["demo<2"]}, entry("demo-2.0.tar.gz"), Reason.LISTED, ""),
        ({"allow": ["demo>=2"]}, entry("demo-1.0.tar.gz"), Reason.NOT_ALLOWED, "allow-list"),
        ({"allow": ["demo>=2"]}, entry("demo-2.0.tar.gz"), Reason.LISTED, ""),
        ({}, entry("demo-3.0.tar.gz"), Reason.MALWARE, "MAL-2026-1: Malicious code in demo"),
        ({}, entry("demo-2.0.tar.gz"), Reason.LISTED, ""),  # not MAL-, not blocked by policy
        ({"block_advisories": ["GHSA-x"]}, entry("demo-2.0.tar.gz"), Reason.ADVISORY, "GHSA-x"),
        ({}, entry("demo-1.0.tar.gz", yanked="broken"), Reason.YANKED, "broken"),
        ({}, entry("demo-1.0.tar.gz", hashes={}), Reason.UNVERIFIABLE, "no SHA-256"),
        ({}, entry("other-1.0.tar.gz"), Reason.UNVERIFIABLE, "not a file of this project"),
        ({}, entry("demo.exe"), Reason.UNVERIFIABLE, ""),
        (
            {
                "cooldown_days": 7,
                "exception": [{"project": "demo", "reason": "urgent fix", "expires": "2026-12-10"}],
            },
            entry("demo-1.0.tar.gz", 1),
            Reason.LISTED,
            "urgent fix",
        ),
        (
            {
                "cooldown_days": 7,
                "exception": [{"project": "demo", "reason": "old", "expires": "2026-12-01"}],
            },
            entry("demo-1.0.tar.gz", 1),
            Reason.COOLDOWN,
            "its exception expired 2026-12-01T00:00:00.000000Z: old",
        ),
    ],
)
def test_each_rule_gives_its_verdict(
    rules: dict[str, Any], file: dict[str, Any], reason: Reason, detail: str
) -> None:
    osv = OsvData.from_records([MAL_DEMO, GHSA_DEMO])
    out = evaluate(policy(**rules), "demo", upstream(file), NOW, osv)
    (verdict,) = out.verdicts
    assert verdict.reason is reason
    assert detail in verdict.detail
    assert out.page is not None
    assert [f.filename for f in out.page.files] == ([file["filename"]] if verdict.listed else [])


def test_a_quarantined_upstream_project_lists_no_files_and_keeps_its_status() -> None:
    up = upstream(
        entry("demo-1.0.tar.gz"), top={"project-status": {"status": "quarantined", "reason": "mal"}}
    )
    out = evaluate(policy(), "demo", up, NOW)
    assert out.page is not None
    doc = json.loads(out.page.to_json_bytes())
    assert doc["files"] == []
    assert doc["project-status"] == {
        "status": "quarantined",
        "reason": "mal",
    }
    assert out.verdicts[0].reason is Reason.STATUS
    html = render_project_html(out.page).decode()
    assert 'content="quarantined"' in html
    assert "<a " not in html


def test_yanks_upload_times_and_hashes_pass_through_and_namespaces_do_not() -> None:
    up = upstream(
        entry("demo-1.0.tar.gz", yanked="broken build", **{"upload-time": "2026-01-02T03:04:05Z"}),
        entry("demo-1.1-py3-none-any.whl", **{"core-metadata": {"sha256": "cd" * 32}}),
        top={"namespaces": [{"name": "demo", "owned": True}]},
    )
    out = evaluate(policy(), "demo", up, NOW)
    assert out.page is not None
    doc = json.loads(out.page.to_json_bytes())
    first, second = doc["files"]
    assert first["yanked"] == "broken build"
    assert first["upload-time"] == "2026-01-02T03:04:05.000000Z"
    assert first["url"] == "../../files/demo/demo-1.0.tar.gz"
    assert second["core-metadata"] == {"sha256": "cd" * 32}
    assert second["yanked"] is False
    assert doc["namespaces"] is None
    assert 'data-yanked="broken build"' in render_project_html(out.page).decode()


def test_link_mode_points_at_upstream_urls() -> None:
    out = evaluate(policy(files="link"), "demo", upstream(entry("demo-1.0.tar.gz")), NOW)
    assert out.page is not None
    url = json.loads(out.page.to_json_bytes())["files"][0]["url"]
    assert url == "http://up.test/files/demo-1.0.tar.gz"  # ../../ from /simple/demo/
    assert f'href="{url}#sha256={HASH}"' in render_project_html(out.page).decode()


def test_the_next_change_is_the_earliest_cooldown_end_or_exception_expiry() -> None:
    up = upstream(entry("demo-1.0.tar.gz", 2), entry("demo-2.0.tar.gz", 5))
    out = evaluate(policy(cooldown_days=7), "demo", up, NOW)
    assert out.next_change == NOW + timedelta(days=2)
    assert evaluate(policy(cooldown_days=7), "demo", up, NOW + timedelta(days=3)).next_change == (
        NOW + timedelta(days=5)
    )
    assert evaluate(policy(cooldown_days=1), "demo", up, NOW).next_change is None
    excepted = policy(
        cooldown_days=7,
        exception=[{"project": "demo", "reason": "r", "expires": "2026-12-08T00:00:00Z"}],
    )
    assert evaluate(excepted, "demo", up, NOW).next_change == datetime(2026, 12, 8, tzinfo=UTC)


def test_a_project_denied_whole_or_off_the_allow_list_has_no_page() -> None:
    up = upstream(entry("demo-1.0.tar.gz"))
    assert evaluate(policy(deny=["Demo"]), "demo", up, NOW).page is None
    assert evaluate(policy(allow=["other"]), "demo", up, NOW).page is None
    assert evaluate(policy(allow=["demo"]), "demo", up, NOW).page is not None


def test_private_and_reserved_names_are_never_taken_from_upstream() -> None:
    hostile = upstream(entry("acme-tools-99.0.tar.gz", 400), name="acme-tools")
    spaces = Namespaces((Namespace.create("acme", owner="platform"),))
    for private, namespaces, reason in (
        (True, Namespaces(), Reason.PRIVATE),
        (False, spaces, Reason.RESERVED),
        (True, spaces, Reason.PRIVATE),
    ):
        out = decide(
            policy(),
            "Acme_Tools",
            private=private,
            namespaces=namespaces,
            upstream=hostile,
            now=NOW,
        )
        assert out.page is None
        assert out.origin is reason
        assert [v.reason for v in out.verdicts] == [reason]
    free = decide(
        policy(), "acme-tools", private=False, namespaces=Namespaces(), upstream=hostile, now=NOW
    )
    assert free.page is not None
    assert free.origin is Reason.LISTED


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"files": []}',
        b'{"meta": {"api-version": "2.0"}, "name": "x", "files": []}',
        b'{"meta": {"api-version": "1.0"}, "files": []}',
    ],
)
def test_an_upstream_answer_that_is_no_project_page_is_refused(raw: bytes) -> None:
    with pytest.raises(UpstreamError):
        parse_upstream_page(raw, UP)


def test_hostile_upstream_entries_are_dropped_or_refused_never_trusted() -> None:
    up = upstream(
        entry("demo-1.0.tar.gz", url="file:///etc/passwd"),  # not http(s): dropped
        entry("demo-1.1.tar.gz", url="javascript:alert(1)"),
        entry("demo-1.2.tar.gz", hashes={"sha256": "XYZ"}),  # not a SHA-256: unverifiable
        entry("demo-1.3.tar.gz", **{"upload-time": "yesterday"}),  # untimed
        entry("../demo-1.4.tar.gz"),
        {"filename": 3},
        "junk",
    )
    out = evaluate(policy(), "demo", up, NOW)
    reasons = {v.filename: v.reason for v in out.verdicts}
    assert reasons == {
        "demo-1.2.tar.gz": Reason.UNVERIFIABLE,
        "demo-1.3.tar.gz": Reason.UNTIMED,
        "../demo-1.4.tar.gz": Reason.UNVERIFIABLE,
    }
    assert out.page is not None
    assert out.page.files == ()
    assert UpstreamPage.from_json(up.to_json()) == up


def test_files_on_a_host_the_view_does_not_fetch_from_are_not_listed() -> None:
    """A hostile upstream page could send the server to any address (an internal one): a
    view lists, and so fetches, only files on upstream's own host and the hosts it names."""
    up = upstream(
        entry("demo-1.0.tar.gz"),  # relative: upstream's own host
        entry("demo-1.1.tar.gz", url="http://169.254.169.254/latest/meta-data/demo-1.1.tar.gz"),
        entry("demo-1.2.tar.gz", url="http://up.test:8080/files/demo-1.2.tar.gz"),  # other port
        entry("demo-1.3.tar.gz", url="https://cdn.test/demo-1.3.tar.gz"),
    )
    reasons = {v.filename: v.reason for v in evaluate(policy(), "demo", up, NOW).verdicts}
    assert reasons == {
        "demo-1.0.tar.gz": Reason.LISTED,
        "demo-1.1.tar.gz": Reason.FILE_HOST,
        "demo-1.2.tar.gz": Reason.FILE_HOST,
        "demo-1.3.tar.gz": Reason.FILE_HOST,
    }
    named = evaluate(policy(file_hosts=["CDN.test"]), "demo", up, NOW)
    assert named.page is not None
    assert [f.filename for f in named.page.files] == ["demo-1.0.tar.gz", "demo-1.3.tar.gz"]


def test_a_filename_listed_twice_upstream_is_listed_once() -> None:
    up = upstream(entry("demo-1.0.tar.gz"), entry("demo-1.0.tar.gz", hashes={"sha256": "cd" * 32}))
    assert [f.sha256 for f in up.files] == [HASH]


def test_a_time_pin_lists_what_was_uploaded_up_to_its_day_with_todays_yanks() -> None:
    from skypi.core.viewpolicy import pin_moment

    up = upstream(
        entry("demo-1.0.tar.gz", 20, yanked="bad"),  # uploaded before the pin, yanked today
        entry("demo-2.0.tar.gz", 9.6),  # 2026-11-27 21:36: on the pin's day
        entry("demo-3.0.tar.gz", 8),  # after the pin
    )
    out = evaluate(policy(cooldown_days=7), "demo", up, NOW, pin=pin_moment("2026-11-27"))
    reasons = [v.reason for v in out.verdicts]
    assert reasons == [Reason.YANKED, Reason.LISTED, Reason.PINNED]
    assert "after the pin (2026-11-28T00:00:00.000000Z)" in out.verdicts[2].detail
