"""Every S3 call the functions make is granted by their role in the synthesized template.

moto checks no IAM here, so a key family written by the code but missing from a role's policy
passes every other test and fails on AWS (the pages for people under ``site/`` once did). This
replays an API upload, a yank, a delete, a quarantine, a refused attested upload and a drop-in
on moto, records each S3 request with its key, and matches it against the role's statements the
way IAM matches resource ARNs (``*`` spans ``/``)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from skypi.api.publish import Uploader
from skypi.core.errors import UploadRejected
from skypi.core.keys import file_key, provenance_key
from skypi.core.osv import OsvData
from skypi.core.pages import RootListing
from skypi.core.upload import validate_filename, validate_form
from skypi.core.views import parse_policy
from skypi.indexer.admin import Admin
from skypi.indexer.service import Indexer, Landed
from skypi.indexer.views import Served, Views
from tests.dists import upload_form, wheel_bytes, wheel_name
from tests.emulated import RequestCounter, s3_store
from tests.infra.conftest import Synth
from tests.oidc import github_claims
from tests.s3grants import Grants, denied, s3_grants
from tests.test_oidc import ASSETS, REAL
from tests.upstream import StaticUpstream


def _granted(synth: Synth, role_fragment: str) -> Grants:
    """Action -> the object key patterns (after ``<bucket>/``) the role's statements allow."""
    return s3_grants(synth.template, lambda roles: role_fragment in json.dumps(roles))


@pytest.fixture
def store(moto_endpoint: str) -> Any:
    return s3_store(moto_endpoint, versioned=True)


def test_every_key_an_api_upload_and_admin_action_writes_is_granted_to_the_api(
    synth: Synth, store: Any
) -> None:
    counter = RequestCounter(store.client)
    indexer = Indexer(store)
    uploader = Uploader(store, indexer, max_size=10 * 1024 * 1024)
    for version in ("1.0", "2.0"):
        data = wheel_bytes("granted", version)
        filename = wheel_name("granted", version)
        fields = {k: [v] for k, v in upload_form(data, filename, "granted", version).items()}
        form = validate_form(fields)
        uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))
    admin = Admin(indexer)
    admin.yank("granted", filename=wheel_name("granted", "1.0"), reason="broken")
    admin.delete("granted", wheel_name("granted", "2.0"))
    admin.set_status("granted", "quarantined", "held for review")  # its files held aside
    admin.set_status("granted", "active", None)
    written = {key.split("/")[0] for op, key in counter.requests if op == "PutObject"}
    assert {"packages", "simple", "site", "held"} <= written
    assert denied(counter.requests, _granted(synth, "ApiFunction")) == []


def test_an_attested_upload_the_index_refuses_leaves_nothing_with_granted_deletes(
    synth: Synth, store: Any
) -> None:
    """The file and its PEP 740 provenance are stored before the page takes the file; when the
    page refuses it (here: an admin archives the project meanwhile), both are deleted again,
    and the API's role must allow both deletes."""
    indexer = Indexer(store)
    uploader = Uploader(store, indexer, max_size=10 * 1024 * 1024)
    first = wheel_bytes("pypi-attestations", "0.0.1")
    name = wheel_name("pypi-attestations", "0.0.1")
    fields = {k: [v] for k, v in upload_form(first, name, "pypi-attestations", "0.0.1").items()}
    form = validate_form(fields)
    uploader.publish(form, validate_filename(form, name), io.BytesIO(first))

    data = (ASSETS / REAL).read_bytes()
    fields = {k: [v] for k, v in upload_form(data, REAL, "pypi-attestations", "0.0.19").items()}
    fields["attestations"] = [f"[{(ASSETS / f'{REAL}.publish.attestation').read_text()}]"]
    form = validate_form(fields)
    repository = "trailofbits/pypi-attestations"
    claims = github_claims(
        repository,
        job_workflow_ref=f"{repository}/.github/workflows/release.yml@refs/tags/v0.0.19",
        environment=None,
    )
    stored = provenance_key("pypi-attestations", REAL)
    archived: list[str] = []

    def archive_meanwhile(context: dict[str, Any], **_: Any) -> None:
        if context.get("skypi_key") == stored and not archived:
            archived.append(stored)
            Admin(indexer).set_status("pypi-attestations", "archived", "moved")

    store.client.meta.events.register("after-call.s3.PutObject", archive_meanwhile)
    store.client.meta.events.register("provide-client-params.s3.PutObject", _keep_params)
    counter = RequestCounter(store.client)
    with pytest.raises(UploadRejected, match="archived"):
        uploader.publish(form, validate_filename(form, REAL), io.BytesIO(data), claims)
    assert archived == [stored]
    deleted = {key for op, key in counter.requests if op == "DeleteObject"}
    assert {file_key("pypi-attestations", REAL), stored} <= deleted
    assert store.head(stored) is None
    assert denied(counter.requests, _granted(synth, "ApiFunction")) == []


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["skypi_key"] = params.get("Key")


def test_every_key_a_drop_in_writes_is_granted_to_the_indexer(synth: Synth, store: Any) -> None:
    key = f"packages/dropped/{wheel_name('dropped', '1.0')}"
    store.put(key, wheel_bytes("dropped", "1.0"))
    counter = RequestCounter(store.client)
    Indexer(store).apply([Landed(key)])
    Admin(Indexer(store)).set_status("dropped", "quarantined", None)
    late = f"packages/dropped/{wheel_name('dropped', '2.0')}"  # dropped into a quarantine
    store.put(late, wheel_bytes("dropped", "2.0"))
    counter.requests.clear()
    Indexer(store).apply([Landed(late)])
    written = {key.split("/")[0] for op, key in counter.requests if op == "PutObject"}
    assert {"packages", "simple", "held"} <= written
    assert denied(counter.requests, _granted(synth, "IndexerFunction")) == []


def test_the_check_sees_a_missing_grant(synth: Synth) -> None:
    granted = _granted(synth, "IndexerFunction")
    without_site = {a: [p for p in ps if not p.startswith("site/")] for a, ps in granted.items()}
    assert denied([("PutObject", "site/index.html")], granted) == []
    assert denied([("PutObject", "site/index.html")], without_site) == [
        "s3:PutObject site/index.html"
    ]


def test_every_key_a_view_reads_and_writes_is_granted_to_the_view_lambda(
    synth: Synth, store: Any, upstream: StaticUpstream
) -> None:
    """What the view Lambda does on a miss and on a schedule, on moto against a loopback
    upstream: a project's page made and stored, a listed file fetched and kept, a page made
    again, a pinned page, the root listing, a name upstream lacks, and a name published here
    (the private page is read, never written)."""
    data = wheel_bytes("private-name", "1.0")
    store.put(file_key("private-name", wheel_name("private-name", "1.0")), data)
    Indexer(store).apply([Landed(file_key("private-name", wheel_name("private-name", "1.0")))])
    upstream.add_wheel("demo", "1.0", datetime(2020, 1, 1, tzinfo=UTC))
    upstream.add_wheel("private-name", "9.0", datetime(2020, 1, 1, tzinfo=UTC))  # hostile
    views = Views(store)
    views.save(parse_policy("safe", {"upstream": upstream.url, "cooldown-days": 7}), new=True)
    views.import_osv(OsvData({}))
    counter = RequestCounter(store.client)
    assert views.project("safe", "demo") is Served.STORED
    assert views.file("safe", "demo", wheel_name("demo", "1.0")) is not None
    assert views.file("safe", "demo", wheel_name("demo", "1.0") + ".metadata") is not None
    assert views.project("safe", "private-name") is Served.PRIVATE
    assert views.project("safe", "absent") is Served.MISSING
    assert views.pinned("safe", "demo", "2021-01-01")[0] is Served.STORED
    views.root("safe", RootListing())
    assert views.refresh("safe") == {"demo": Served.STORED}
    written = {key.split("/")[2] for op, key in counter.requests if op == "PutObject"}
    assert written == {"simple", "files", "upstream"}, written
    assert not [k for op, k in counter.requests if op == "PutObject" and k.startswith("simple/")]
    assert denied(counter.requests, _granted(synth, "ViewsFunction")) == []


class _Asked:
    """Where a rebuild is asked for, recorded (its SQS side is held to the template below)."""

    def __init__(self) -> None:
        self.delays: list[int] = []

    def request(self, delay: int) -> None:
        self.delays.append(delay)


def test_the_root_listing_deferred_is_granted_to_both_writers(synth: Synth, store: Any) -> None:
    """An upload of a new project records it as pending and asks for a rebuild (the API);
    the indexer records a drop-in's, and runs the rebuild, which deletes what it merged."""
    asked = _Asked()
    counter = RequestCounter(store.client)
    uploader = Uploader(store, Indexer(store, rebuilds=asked), max_size=10 * 1024 * 1024)
    data, filename = wheel_bytes("deferred", "1.0"), wheel_name("deferred", "1.0")
    fields = {k: [v] for k, v in upload_form(data, filename, "deferred", "1.0").items()}
    form = validate_form(fields)
    uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))
    assert asked.delays
    assert {k.split("/")[0] for op, k in counter.requests if op == "PutObject"} >= {"pending"}
    assert denied(counter.requests, _granted(synth, "ApiFunction")) == []

    counter.requests.clear()
    key = f"packages/dropped-late/{wheel_name('dropped-late', '1.0')}"
    store.put(key, wheel_bytes("dropped-late", "1.0"))
    indexer = Indexer(store, rebuilds=asked)
    indexer.apply([Landed(key)])
    assert indexer.rebuild_root() is not None
    deleted = {k.split("/")[0] for op, k in counter.requests if op == "DeleteObject"}
    assert deleted == {"pending"}
    assert denied(counter.requests, _granted(synth, "IndexerFunction")) == []


def test_both_writers_may_ask_the_indexer_queue_for_a_rebuild(synth: Synth) -> None:
    """SendMessage on the indexer's own queue, whose URL is in each one's environment."""
    resources = synth.template["Resources"]
    queues = [k for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"]
    events = next(q for q in queues if q.startswith("IndexerEvents"))
    for fragment in ("ApiFunction", "IndexerFunction"):
        function = next(
            v
            for k, v in resources.items()
            if v["Type"] == "AWS::Lambda::Function" and k.startswith(fragment)
        )
        env = function["Properties"]["Environment"]["Variables"]
        assert env["SKYPI_INDEX_QUEUE_URL"] == {"Ref": events}
        assert 0 <= int(env["SKYPI_ROOT_DELAY_SECONDS"]) <= 900  # SQS's DelaySeconds
        policies = [
            v["Properties"]["PolicyDocument"]["Statement"]
            for k, v in resources.items()
            if v["Type"] == "AWS::IAM::Policy" and fragment in json.dumps(v["Properties"]["Roles"])
        ]
        sends = [
            s
            for statements in policies
            for s in statements
            if "sqs:SendMessage" in json.dumps(s["Action"])
            and {"Fn::GetAtt": [events, "Arn"]} == s["Resource"]
        ]
        assert sends, fragment


def test_the_rebuild_delay_is_chosen_within_sqs_limits() -> None:
    """SQS delays a message by 0 to 900 seconds (DelaySeconds, API_SendMessage)."""
    from aws_cdk import App

    from infra.config import Config

    assert Config.from_context(App().node).root_delay_seconds == 30
    assert (
        Config.from_context(App(context={"skypi:rootDelaySeconds": "0"}).node).root_delay_seconds
        == 0
    )
    for bad in ("901", "-1"):
        with pytest.raises(ValueError, match="rootDelaySeconds"):
            Config.from_context(App(context={"skypi:rootDelaySeconds": bad}).node)
