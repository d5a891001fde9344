"""PEP 792 at the CloudFront edge: `skypi status PROJECT quarantined` (the admin action, on moto)
writes the project's record into the edge's KeyValueStore (emulated with CloudFront's limits)
before the page, drops the cached files, and the CloudFront Function (under node) then refuses
the files; lifting it removes the record after the page; `skypi reindex` makes the records
match the pages. What a failed KeyValueStore write leaves behind is never a served file."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from skypi import cli
from skypi.core.errors import EdgeUnavailable
from skypi.core.keys import QUARANTINE_RECORD_VALUE, quarantine_record_key
from skypi.core.tokens import EDGE_MAX_KEY_BYTES, EDGE_MAX_STORE_BYTES, EDGE_MAX_VALUE_BYTES
from skypi.indexer.admin import Admin, require_project_name
from skypi.indexer.rebuild import Rebuilder
from skypi.indexer.service import Indexer, Landed
from skypi.local.emulator import CloudFrontEmulation, KeyValueStoreEmulation
from skypi.store.cdn import CloudFrontCdn
from skypi.store.kvs import EdgeQuarantine, KeyValueStore, record
from tests.aws.conftest import Emulated
from tests.dists import wheel_bytes, wheel_name
from tests.infra.test_edge_function import _event, run_function

KVS_ARN = "arn:aws:cloudfront::123456789012:key-value-store/0123abcd-0000-0000-0000-00000000q792"
DISTRIBUTION = "E2QUARANTINE"
WHEEL = wheel_name("held", "1.0")
FILE = f"packages/held/{WHEEL}"


class FlakyStore(KeyValueStoreEmulation):
    """The emulated store, whose next ``failures`` UpdateKeys answer as a throttled or broken
    service does once botocore's retries give up, and which runs ``meanwhile`` (another
    admin's action) once, just after a given UpdateKeys succeeds."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.updates = 0
        self.meanwhile: tuple[int, Any] | None = None

    def update_keys(self, **kwargs: Any) -> dict[str, Any]:
        if self.failures:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "InternalServerException", "Message": "try again"}},
                "UpdateKeys",
            )
        answer = super().update_keys(**kwargs)
        self.updates += 1
        if self.meanwhile is not None and self.meanwhile[0] == self.updates:
            _, action = self.meanwhile
            self.meanwhile = None
            action()
        return answer


@pytest.fixture
def kvs() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
def cloudfront() -> CloudFrontEmulation:
    return CloudFrontEmulation({DISTRIBUTION})


@pytest.fixture
def admin(aws: Emulated, kvs: FlakyStore, cloudfront: CloudFrontEmulation) -> Admin:
    """The admin API's Admin on AWS: S3 (moto), the distribution, the edge's KeyValueStore;
    with ``held`` and ``neighbour`` indexed."""
    indexer = Indexer(aws.store, cdn=CloudFrontCdn(DISTRIBUTION, cloudfront))
    for project in ("held", "neighbour"):
        key = f"packages/{project}/{wheel_name(project, '1.0')}"
        aws.drop(key, wheel_bytes(project, "1.0"))
        indexer.apply([Landed(key)])
    return Admin(indexer, edge(kvs))


def edge(kvs: KeyValueStoreEmulation) -> EdgeQuarantine:
    return EdgeQuarantine(KeyValueStore(KVS_ARN, kvs))  # type: ignore[arg-type]


def at_the_edge(path: str, kvs: KeyValueStoreEmulation, mode: str = "public") -> int:
    """What the CloudFront Function makes of a GET of ``path`` with the store as it is: its own
    answer, or 200 for a read it sends on to the bucket (or its cache)."""
    (result,) = run_function([_event("GET", path, "", {})], mode, dict(kvs.items))
    return int(result.get("statusCode", 200))


def status(admin: Admin, project: str) -> str:
    page = admin.indexer.pages.read(require_project_name(project)).page
    assert page is not None
    return page.status


def test_a_quarantine_is_refused_at_the_edge_and_its_cached_files_dropped(
    admin: Admin, kvs: FlakyStore, cloudfront: CloudFrontEmulation
) -> None:
    path, metadata = f"/{FILE}", f"/{FILE}.metadata"
    neighbour = f"/packages/neighbour/{wheel_name('neighbour', '1.0')}"
    assert at_the_edge(path, kvs) == 200

    admin.set_status("Held", "quarantined", "malware reported")
    assert kvs.items == {quarantine_record_key("held"): QUARANTINE_RECORD_VALUE}
    assert [at_the_edge(p, kvs) for p in (path, metadata, neighbour)] == [404, 404, 200]
    assert at_the_edge(path, kvs, "private") == 401  # no token: nothing said of the project
    # The function runs before CloudFront's cache; the copies it holds are dropped as well,
    # by their exact paths (skypi.core.invalidation).
    sent = [p for i in cloudfront.invalidations[DISTRIBUTION] for p in i.paths]
    assert sent == [path, metadata]

    admin.set_status("held", "active")
    assert kvs.items == {}
    assert at_the_edge(path, kvs) == 200
    admin.set_status("held", "deprecated", "use neighbour")  # no record to remove: no error
    assert kvs.items == {}


def test_a_failed_record_write_changes_nothing(admin: Admin, kvs: FlakyStore) -> None:
    """The record is written first: when it cannot be, the page is left as it was and the
    admin is told to send the request again (503), which then finishes it."""
    kvs.failures = 1
    with pytest.raises(EdgeUnavailable, match="nothing changed"):
        admin.set_status("held", "quarantined", "malware reported")
    assert status(admin, "held") == "active"
    assert kvs.items == {}
    admin.set_status("held", "quarantined", "malware reported")
    assert status(admin, "held") == "quarantined"
    assert quarantine_record_key("held") in kvs.items


def test_a_failed_record_removal_leaves_the_files_refused(admin: Admin, kvs: FlakyStore) -> None:
    """The record is removed after the page: when it cannot be, the files stay refused (never
    served while the page says quarantined), and sending the request again removes it."""
    admin.set_status("held", "quarantined", "malware reported")
    kvs.failures = 1
    with pytest.raises(EdgeUnavailable, match="still refuses its files"):
        admin.set_status("held", "active")
    assert status(admin, "held") == "active"
    assert at_the_edge(f"/{FILE}", kvs) == 404
    admin.set_status("held", "active")
    assert kvs.items == {}


def test_a_lift_racing_a_quarantine_leaves_the_record(admin: Admin, kvs: FlakyStore) -> None:
    """Staged: another admin lifts the quarantine (page, then record) between this one's record
    and its page. The page ends quarantined, so its record must stay: the quarantine writes
    it again once its page is written."""
    other = Admin(admin.indexer, admin.edge)
    kvs.meanwhile = (1, lambda: other.set_status("held", "active"))  # after the first put
    admin.set_status("held", "quarantined", "malware reported")
    assert status(admin, "held") == "quarantined"
    assert kvs.items == {quarantine_record_key("held"): QUARANTINE_RECORD_VALUE}


def test_a_quarantine_racing_a_lift_leaves_the_record(admin: Admin, kvs: FlakyStore) -> None:
    """Staged: another admin quarantines the project (record, page) while this one lifts it,
    after this one's page and before its record is removed: the lift looks at the page again
    once the record is gone, and writes it back."""
    admin.set_status("held", "quarantined", "first")
    other = Admin(admin.indexer, admin.edge)
    lifting = kvs.updates + 1  # the lift's removal of the record

    def quarantine_again() -> None:
        kvs.meanwhile = None
        other.indexer.set_status(require_project_name("held"), "quarantined", "again")  # its page

    kvs.meanwhile = (lifting, quarantine_again)
    admin.set_status("held", "active")
    assert status(admin, "held") == "quarantined"
    assert quarantine_record_key("held") in kvs.items


def test_reindex_makes_the_records_match_the_pages(
    aws: Emulated, admin: Admin, kvs: FlakyStore
) -> None:
    """A quarantine set by an older skypi (no record) and a record left by a lift whose removal
    failed: `reindex --check` reports both, `reindex` repairs both, and a token's key is never
    touched."""
    Admin(admin.indexer).set_status("held", "quarantined", "before the edge knew")  # no record
    token = "ab" * 32
    kvs.items.update({token: '{"s":0}', quarantine_record_key("neighbour"): "quarantined"})
    rebuilder = Rebuilder(Indexer(aws.store), workers=1, edge=edge(kvs))
    report = rebuilder.run(check=True)
    assert sorted(map(str, report.drift)) == [
        "held: quarantined, but the edge serves its files",
        "neighbour: not quarantined, but the edge refuses its files",
    ]
    assert set(kvs.items) == {token, quarantine_record_key("neighbour")}  # --check: unchanged
    assert rebuilder.run(check=False).drift == report.drift
    assert kvs.items == {token: '{"s":0}', quarantine_record_key("held"): "quarantined"}
    assert rebuilder.run(check=True).drift == []


def test_a_project_that_cannot_be_checked_keeps_its_record(
    aws: Emulated, admin: Admin, kvs: FlakyStore
) -> None:
    """Its status is unknown: the record (refusing its files) stays until it can be read."""
    admin.set_status("held", "quarantined", "malware reported")
    aws.drop("simple/held/index.json", b"not a page")
    rebuilder = Rebuilder(Indexer(aws.store), workers=1, edge=edge(kvs))
    rebuilder.run(check=True)
    assert quarantine_record_key("held") in kvs.items


def test_the_cli_reindex_reaches_the_records(
    aws: Emulated, admin: Admin, kvs: FlakyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    Admin(admin.indexer).set_status("held", "quarantined", "before the edge knew")
    monkeypatch.setattr(KeyValueStore, "client", property(lambda self: kvs))
    args = ["reindex", "--bucket", aws.resources.bucket, "--kvs-arn", KVS_ARN, "--workers", "1"]
    assert cli.main([*args, "--check"]) == 1
    assert cli.main(args) == 0
    assert quarantine_record_key("held") in kvs.items
    assert cli.main([*args, "--check"]) == 0


def test_a_record_fits_the_key_value_stores_limits(kvs: FlakyStore) -> None:
    """A KeyValueStore key is at most 512 bytes and a value 1 KB, 5 MB in all (Amazon CloudFront
    Developer Guide, "Quotas on key value stores"): the longest project name skypi takes
    makes a record that fits, the emulated store (which refuses what AWS refuses) takes it,
    and the store holds thousands of such records beside a full set of tokens' keys."""
    longest = require_project_name("x" * 246)  # MAX_FILENAME_BYTES: no file of a longer name fits
    with pytest.raises(Exception, match="too long"):
        require_project_name("x" * 247)
    key = record(longest)
    assert len(key.encode()) <= EDGE_MAX_KEY_BYTES
    assert len(QUARANTINE_RECORD_VALUE.encode()) <= EDGE_MAX_VALUE_BYTES
    edge(kvs).hold(longest)
    assert kvs.items == {key: QUARANTINE_RECORD_VALUE}
    per_record = len(key.encode()) + len(QUARANTINE_RECORD_VALUE.encode())
    assert EDGE_MAX_STORE_BYTES // per_record > 19_000  # the longest names; short ones: more
    with pytest.raises(ValueError, match="normalized"):
        record("Not-Normalized")


def test_a_full_store_refuses_the_quarantine_and_nothing_changes(
    admin: Admin, kvs: FlakyStore
) -> None:
    """5 MB of token records: the store refuses one more key (ServiceQuotaExceededException),
    so the quarantine is refused as a whole (503) and the page is left as it was."""
    value = "v" * EDGE_MAX_VALUE_BYTES
    per_token = 64 + len(value)
    kvs.items.update({f"{i:064x}": value for i in range(EDGE_MAX_STORE_BYTES // per_token)})
    room = EDGE_MAX_STORE_BYTES - kvs.size
    kvs.items["f" * 64] = "v" * (room - 64 - 5)  # 5 bytes left: less than the record
    with pytest.raises(EdgeUnavailable, match="nothing changed"):
        admin.set_status("held", "quarantined", "malware reported")
    assert status(admin, "held") == "active"
