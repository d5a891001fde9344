"""The workload of the fault tier, the same on both paths: uploads through the upload API's
:class:`Uploader` (and identical re-uploads, as twine retries), drop-ins, files that are no
distribution, yanks and deletes, in a seeded order; and the checks of the index it leaves.

An upload is acknowledged when ``publish`` returned (the API's 2xx). A drop-in is there once
the copy is done, so the index must list it too. A delete that failed part-way may or may not
have removed the file: storage decides what the index must show.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from skypi.api.publish import Uploader
from skypi.core.errors import DoesNotExist, UploadRejected
from skypi.core.pages import PACKAGES_PREFIX, FileEntry, ProjectPage, metadata_key
from skypi.core.upload import validate_filename, validate_form
from skypi.indexer.admin import Admin
from skypi.indexer.rebuild import Rebuilder, Report
from skypi.indexer.service import Indexer
from skypi.store.base import NotFound, Store
from tests.dists import upload_form, wheel_bytes, wheel_name

PROJECTS = ("alpha", "beta", "gamma-ray", "delta")
OPERATIONS = ("upload", "again", "drop", "junk", "yank", "delete")
WEIGHTS = (6, 1, 3, 1, 1, 1)
Drop = Callable[[str, bytes], None]


@dataclass
class Workload:
    rng: random.Random
    uploader: Uploader
    drop_file: Drop
    expected: dict[str, str] = field(default_factory=dict)  # key -> sha256, must be listed
    uploaded: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # key -> p, v, data
    yanked: set[str] = field(default_factory=set)
    delete_tried: set[str] = field(default_factory=set)
    junk: set[str] = field(default_factory=set)
    unsent: list[tuple[str, str]] = field(default_factory=list)  # yanks answered 5xx
    done: Counter[str] = field(default_factory=Counter)  # operation -> acknowledged
    failed: Counter[str] = field(default_factory=Counter)  # operation -> failed (not acked)

    @property
    def admin(self) -> Admin:
        return Admin(self.uploader.intake.indexer)

    def step(self, i: int) -> None:
        operation = self.rng.choices(OPERATIONS, WEIGHTS)[0]
        try:
            getattr(self, f"_{operation}")(i)
            self.done[operation] += 1
        except (DoesNotExist, LookupError):
            self.done[f"{operation} (nothing to do)"] += 1
        except Exception:  # a storage fault: the client saw a 5xx (or the copy failed)
            self.failed[operation] += 1

    def _publish(self, project: str, version: str, data: bytes) -> None:
        filename = wheel_name(project, version)
        fields = {k: [v] for k, v in upload_form(data, filename, project, version).items()}
        form = validate_form(fields)
        self.uploader.publish(form, validate_filename(form, filename), io.BytesIO(data))

    def _upload(self, i: int) -> None:
        project = self.rng.choice(PROJECTS)
        version = f"1.{i}"
        data = wheel_bytes(project, version)
        key = f"{PACKAGES_PREFIX}{project}/{wheel_name(project, version)}"
        self.uploaded[key] = (project, version, data)
        self._publish(project, version, data)
        self.expected[key] = hashlib.sha256(data).hexdigest()

    def _again(self, _: int) -> None:
        choices = sorted(set(self.uploaded) - self.delete_tried)
        project, version, data = self.uploaded[self.rng.choice(choices)]
        try:
            self._publish(project, version, data)
        except UploadRejected:
            self.done["again (refused)"] += 1
            raise
        key = f"{PACKAGES_PREFIX}{project}/{wheel_name(project, version)}"
        self.expected[key] = hashlib.sha256(data).hexdigest()

    def _drop(self, i: int) -> None:
        project = self.rng.choice(PROJECTS)
        data = wheel_bytes(project, f"2.{i}")
        key = f"{PACKAGES_PREFIX}{project}/{wheel_name(project, f'2.{i}')}"
        self.drop_file(key, data)
        self.expected[key] = hashlib.sha256(data).hexdigest()

    def _junk(self, i: int) -> None:
        project = self.rng.choice(PROJECTS)
        key = f"{PACKAGES_PREFIX}{project}/{wheel_name(project, f'9.{i}')}"
        self.drop_file(key, b"PK\x03\x04 these bytes are no wheel")
        self.junk.add(key)

    def _pick(self) -> tuple[str, str]:
        choices = sorted(set(self.expected) - self.delete_tried)
        key = self.rng.choice(choices)
        return key.split("/")[1], key.rsplit("/", 1)[1]

    def _yank(self, _: int) -> None:
        project, filename = self._pick()
        try:
            self.admin.yank(project, filename=filename, reason="injected")
        except (DoesNotExist, LookupError):
            raise
        except Exception:
            self.unsent.append((project, filename))
            raise
        self.yanked.add(f"{PACKAGES_PREFIX}{project}/{filename}")

    def send_again(self) -> None:
        """The admin sends each yank answered 5xx again, as the answer asks (no storage event
        follows an edit: the edit sent again writes what follows the page if its first try
        stored the page and failed after)."""
        for project, filename in self.unsent:
            try:
                self.admin.yank(project, filename=filename, reason="injected")
            except DoesNotExist:
                self.done["yank sent again (nothing to do)"] += 1
                continue
            self.done["yank sent again"] += 1
            self.yanked.add(f"{PACKAGES_PREFIX}{project}/{filename}")
        self.unsent.clear()

    def _delete(self, _: int) -> None:
        project, filename = self._pick()
        key = f"{PACKAGES_PREFIX}{project}/{filename}"
        self.delete_tried.add(key)
        try:
            self.admin.delete(project, filename)
        except DoesNotExist:
            # Not listed yet, or gone already: only the first leaves the file in storage. The
            # second may be this very delete, whose reply was lost (S3 did it; the retry got
            # 412): storage decides what the page must show.
            if self.uploader.store.head(key) is not None:
                self.delete_tried.discard(key)
            raise


def listed_entries(store: Store) -> dict[str, FileEntry]:
    entries: dict[str, FileEntry] = {}
    for info in store.list("simple/"):
        parts = info.key.split("/")
        if len(parts) == 3 and parts[2] == "index.json":
            page = ProjectPage.from_json_bytes(store.get(info.key)[1])
            entries |= {f.key: f for f in page.files}
    return entries


def check_index(store: Store, work: Workload) -> Report:
    """Every invariant the tier holds the index to once the queue has drained; returns what
    ``reindex --check`` reports (which must name every refused file and find no drift)."""
    listed = listed_entries(store)
    for key, sha256 in sorted(work.expected.items()):
        if key in work.delete_tried and store.head(key) is None:
            assert key not in listed, f"{key} is deleted but still listed"
            continue
        assert key in listed, f"{key} was acknowledged (or copied in) but is not listed"
        assert listed[key].sha256 == sha256, f"{key} is listed with another hash"
    for key, entry in sorted(listed.items()):
        try:
            data = store.get(key)[1]
        except NotFound:
            raise AssertionError(f"a page lists {key}, which storage does not hold") from None
        assert hashlib.sha256(data).hexdigest() == entry.sha256, f"{key}: bytes and hash differ"
        if entry.metadata_sha256:
            try:
                raw = store.get(metadata_key(key))[1]
            except NotFound:
                raise AssertionError(f"{key} is listed without its .metadata") from None
            assert hashlib.sha256(raw).hexdigest() == entry.metadata_sha256
    for key in sorted(work.yanked - work.delete_tried):
        assert listed[key].yanked, f"{key} was yanked (acknowledged) but is listed unyanked"
    assert not work.junk & listed.keys(), "a file that is no distribution is listed"
    report = Rebuilder(Indexer(store)).run(check=True)
    set_aside = {key for key, _ in report.set_aside}  # listed, and not drift
    for key in sorted(work.junk):
        assert key in set_aside, f"reindex --check does not name {key}, which the index refused"
    drift = [str(d) for d in report.drift]
    assert drift == [], f"reindex --check finds drift: {drift}"
    return report
