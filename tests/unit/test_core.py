"""Tables of cases for the pure core (reference/standards.md §9)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from datetime import UTC, datetime

import pytest
from packaging.utils import NormalizedName

from skypi.api.errors import status_of
from skypi.core.errors import InvalidDistribution, SkypiError, UploadRejected
from skypi.core.filenames import parse_filename
from skypi.core.metadata import Limits, sdist_metadata, wheel_metadata
from skypi.core.pages import FileEntry, ProjectPage, RootEntry, RootListing
from skypi.core.render import html_serial, render_project_html, render_root_html
from skypi.core.tokens import TokenRecord, credentials_from_header, new_token
from skypi.core.upload import check_digests, validate_filename, validate_form
from tests.dists import metadata_text, sdist_bytes, upload_form, wheel_bytes


@pytest.mark.parametrize(
    ("filename", "project", "version"),
    [
        ("foo-1.0-py3-none-any.whl", "foo", "1.0"),
        ("Foo_Bar-1.0-py3-none-any.whl", "foo-bar", "1.0"),
        ("foo-1.0-1-py3-none-any.whl", "foo", "1.0"),
        ("foo-1.0+cpu-py3-none-any.whl", "foo", "1.0+cpu"),
        ("some_thing-1.0.post9.tar.gz", "some-thing", "1.0.post9"),
        ("Legacy.Name-2.0.zip", "legacy-name", "2.0"),
        ("old-1.0.tar.bz2", "old", "1.0"),
    ],
)
def test_parse_filename(filename: str, project: str, version: str) -> None:
    dist = parse_filename(filename)
    assert (dist.project, str(dist.version)) == (project, version)


@pytest.mark.parametrize(
    "filename",
    [
        "foo-bar-1.0-py3-none-any.whl",
        "foo-1.0.whl",
        "foo-1.0-q-py3-none-any.whl",
        "foo__bar-1.0-py3-none-any.whl",
        "foo-1.x-py3-none-any.whl",
        "foo-1.0-py3-none-any.WHL",
        "foo1.0.tar.gz",
        "../foo-1.0.tar.gz",
        ".hidden-1.0.tar.gz",
        "foo-1.0.exe",
        "README.txt",
        "foo 1.0.tar.gz",
        "foo-1.0-py3-none-any\x00.whl",
    ],
)
def test_not_a_distribution(filename: str) -> None:
    with pytest.raises(InvalidDistribution):
        parse_filename(filename)


def _reader(data: bytes, log: list[tuple[int, int]] | None = None):  # type: ignore[no-untyped-def]
    def read_at(start: int, length: int) -> bytes:
        if log is not None:
            log.append((start, length))
        return data[start : start + length]

    return read_at


def test_wheel_metadata_reads_only_what_it_needs() -> None:
    data = wheel_bytes(
        "big",
        "1.0",
        requires_python=">=3.9",
        payload=b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(40000)),
    )
    log: list[tuple[int, int]] = []
    meta = wheel_metadata(parse_filename("big-1.0-py3-none-any.whl"), len(data), _reader(data, log))
    assert meta.requires_python == ">=3.9"
    assert meta.raw == metadata_text("big", "1.0", ">=3.9").encode()
    assert sum(length for _, length in log) < len(data) / 4


def _zip_with_metadata(body: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb-1.0.dist-info/METADATA", body)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a zip", "not a zipfile"),
        (
            _zip_with_metadata(metadata_text("bomb", "1.0").encode() + b"x" * 50_000_000),
            "too large",
        ),
        (
            _zip_with_metadata(
                b"Metadata-Version: 2.1\nName: bomb\nVersion: 1.0\n" + b"x" * 1_000_000
            ),
            "compression ratio",
        ),
        (
            _zip_with_metadata(b"Metadata-Version: 9.9\nName: bomb\nVersion: 1.0\n"),
            "not a valid metadata version",
        ),
    ],
)
def test_hostile_wheels(data: bytes, message: str) -> None:
    with pytest.raises(InvalidDistribution, match=message):
        wheel_metadata(parse_filename("bomb-1.0-py3-none-any.whl"), len(data), _reader(data))


def _sdist_metadata(data: bytes, filename: str = "foo-1.0.tar.gz", **limits: int) -> object:
    return sdist_metadata(
        parse_filename(filename),
        len(data),
        _reader(data),
        lambda: io.BytesIO(data),
        Limits(**limits),
    )


def test_sdist_metadata() -> None:
    meta = _sdist_metadata(sdist_bytes("foo", "1.0", requires_python=">=3.10"))
    assert meta.requires_python == ">=3.10"  # type: ignore[attr-defined]


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_hostile_sdists() -> None:
    with pytest.raises(InvalidDistribution, match="PKG-INFO not found"):
        _sdist_metadata(_tar({"foo-1.0/setup.py": b""}))
    with pytest.raises(InvalidDistribution, match="top-level"):
        _sdist_metadata(_tar({"foo-1.0/a": b"", "other/PKG-INFO": b""}))
    with pytest.raises(InvalidDistribution, match="too much data"):
        _sdist_metadata(
            _tar({"foo-1.0/zeros": bytes(3_000_000), "foo-1.0/PKG-INFO": b""}),
            min_stream_budget=1_000_000,
        )
    with pytest.raises(InvalidDistribution, match="Too many members"):
        _sdist_metadata(_tar({f"foo-1.0/{i}": b"" for i in range(50)}), max_members=10)


# -- upload form (standards.md §9.4) ------------------------------------------------------------

WHEEL = wheel_bytes("foo", "1.0")
NAME = "foo-1.0-py3-none-any.whl"


def _form(**overrides: str | None) -> dict[str, list[str]]:
    fields: dict[str, str | None] = {**upload_form(WHEEL, NAME, "foo", "1.0"), **overrides}
    return {k: [v] for k, v in fields.items() if v is not None}


@pytest.mark.parametrize(
    ("overrides", "status", "message"),
    [
        ({"sha256_digest": None, "blake2_256_digest": None}, 400, "Include at least one"),
        ({"sha256_digest": "xyz"}, 400, "Use a valid, hex-encoded, SHA256"),
        ({"protocol_version": "2"}, 400, "Unknown protocol version."),
        ({":action": None}, 400, "':action=file_upload'"),
        ({":action": "doc_upload"}, 410, "not supported"),
        ({"filetype": "bdist_egg"}, 400, "Use a known file type."),
        ({"filetype": None}, 400, "filetype. Error: This field is required."),
        ({"pyversion": None}, 400, "Python version is required"),
        ({"metadata_version": "2.0"}, 400, "'2.0' is not a valid metadata version."),
        ({"metadata_version": None}, 400, "None is not a valid metadata version."),
        ({"version": "1.x"}, 400, "'1.x' is invalid for 'version'."),
        ({"version": ""}, 400, "'version' is a required field."),
        ({"name": "-foo"}, 400, "'-foo' is an invalid value for Name."),
        ({"name": None}, 400, "'' is an invalid value for Name. Error: This field is required."),
        ({"summary": "x" * 513}, 400, "512 characters or less"),
        ({"attestations": "[{}]"}, 400, "each attestation must be an object with version 1"),
        ({"attestations": "not json"}, 400, "Invalid attestations supplied during upload"),
    ],
)
def test_form_rejections(overrides: dict[str, str | None], status: int, message: str) -> None:
    with pytest.raises(SkypiError, match=None) as info:
        validate_form(_form(**overrides))
    assert status_of(info.value) == status
    assert message in str(info.value)


def test_form_accepts_md5_only_and_empty_requires_python() -> None:
    md5 = hashlib.md5(WHEEL, usedforsecurity=False).hexdigest()
    request = validate_form(
        _form(sha256_digest=None, blake2_256_digest=None, md5_digest=md5, requires_python="")
    )
    assert request.digests == {"md5_digest": md5}  # the one digest given, and it is enough
    assert request.project == "foo"
    computed = {"md5_digest": md5, "sha256_digest": "0" * 64, "blake2_256_digest": "0" * 64}
    check_digests(request, computed)  # unsupplied digests are not compared
    with pytest.raises(UploadRejected, match="does not match"):
        check_digests(request, {**computed, "md5_digest": "0" * 32})


@pytest.mark.parametrize(
    ("name", "version", "filetype", "filename", "message"),
    [
        ("foo", "1.0", "bdist_wheel", "bar-1.0-py3-none-any.whl", "Start filename for 'foo'"),
        (
            "foo",
            "1.0",
            "bdist_wheel",
            "Foo-1.0-py3-none-any.whl",
            "should contain the normalized project name 'foo', not 'Foo'",
        ),
        ("foo.bar", "1.0", "bdist_wheel", "foo.bar-1.0-py3-none-any.whl", "not 'foo.bar'"),
        (
            "foo",
            "1.2.3",
            "bdist_wheel",
            "foo-6.6.6-py3-none-any.whl",
            "Version in filename should be '1.2.3' not '6.6.6'.",
        ),
        ("foo", "1.0", "sdist", "foo-1.0.zip", "should be 'foo-1.0.tar.gz'"),
        ("foo", "1.0", "sdist", "Foo-1.0.tar.gz", "should be 'foo-1.0.tar.gz'"),
        (
            "some_thing",
            "1.0.post9",
            "sdist",
            "some-thing-1.0.post9.tar.gz",
            "should be 'some_thing-1.0.post9.tar.gz'",
        ),
        ("foo", "1.0", "sdist", "foo-1.0.whl", "Extension .whl is invalid for filetype sdist"),
        ("foo", "1.0", "bdist_wheel", "foo-1.0.exe", "Use .tar.gz, .whl or .zip"),
        ("foo", "1.0", "bdist_wheel", "a/foo-1.0-py3-none-any.whl", "'/' or '\\'"),
    ],
)
def test_filename_rejections(
    name: str, version: str, filetype: str, filename: str, message: str
) -> None:
    request = validate_form(
        _form(
            name=name,
            version=version,
            filetype=filetype,
            pyversion="source" if filetype == "sdist" else "py3",
        )
    )
    with pytest.raises(UploadRejected) as info:
        validate_filename(request, filename)
    assert message in str(info.value)


def test_filename_accepts_equal_versions_and_local_versions() -> None:
    request = validate_form(_form(version="1.0"))
    assert str(validate_filename(request, "foo-1.0.0-py3-none-any.whl").version) == "1.0.0"
    local = validate_form(_form(version="1.0+cpu"))
    validate_filename(local, "foo-1.0+cpu-py3-none-any.whl")


# -- pages and rendering -------------------------------------------------------------------------


def _entry(**changes: object) -> FileEntry:
    base = {
        "filename": "foo-1.0+cpu-py3-none-any.whl",
        "key": "packages/foo/foo-1.0+cpu-py3-none-any.whl",
        "version": "1.0+cpu",
        "sha256": "a" * 64,
        "size": 10,
        "upload_time": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "requires_python": ">=3.8,<4",
        "metadata_sha256": "b" * 64,
    }
    return FileEntry(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("yanked", "attribute", "in_json"),
    [
        (None, None, False),
        ("", 'data-yanked=""', True),  # yanked without a reason: still yanked (PEP 592)
        ("bad build", 'data-yanked="bad build"', "bad build"),
    ],
    ids=["not-yanked", "no-reason", "with-reason"],
)
def test_a_yank_shows_in_both_pages_with_or_without_a_reason(
    yanked: str | None, attribute: str | None, in_json: object
) -> None:
    """PEP 592: the attribute's presence marks a yank, its value is the optional reason; an
    empty reason must not drop it (pip would install the yanked file)."""
    page = ProjectPage.empty("Foo").with_files((_entry(yanked=yanked),))
    line = next(line for line in render_project_html(page).decode().splitlines() if "<a " in line)
    if attribute is None:
        assert "data-yanked" not in line
    else:
        assert attribute in line
    assert json.loads(page.to_json_bytes())["files"][0]["yanked"] == in_json


def test_html_page_attributes() -> None:
    page = ProjectPage.empty("Foo").with_files(
        (
            _entry(),
            _entry(
                filename="foo-0.9.tar.gz",
                key="packages/foo/foo-0.9.tar.gz",
                version="0.9",
                metadata_sha256=None,
                yanked='broken & "bad"',
            ),
        )
    )
    html = render_project_html(page).decode()
    assert '<meta name="pypi:repository-version" content="1.4">' in html
    assert 'href="../../packages/foo/foo-1.0%2Bcpu-py3-none-any.whl#sha256=' + "a" * 64 in html
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in html
    assert f'data-core-metadata="sha256={"b" * 64}"' in html
    assert f'data-dist-info-metadata="sha256={"b" * 64}"' in html
    assert 'data-yanked="broken &amp; &quot;bad&quot;"' in html
    assert 'data-upload-time="2024-01-02T03:04:05.000000Z"' in html
    assert html.index("foo-0.9.tar.gz") < html.index("foo-1.0+cpu")  # sorted by version
    sdist_line = next(line for line in html.splitlines() if "foo-0.9.tar.gz" in line)
    assert "data-core-metadata" not in sdist_line
    assert html_serial(html.encode()) == page.serial


def test_json_page_fields_and_roundtrip() -> None:
    page = ProjectPage.empty("Foo").with_files(
        (
            _entry(),
            _entry(
                filename="foo-2.0.tar.gz",
                key="packages/foo/foo-2.0.tar.gz",
                version="2.0",
                metadata_sha256=None,
                yanked="",
                requires_python=None,
            ),
        )
    )
    doc = json.loads(page.to_json_bytes())
    assert doc["meta"]["api-version"] == "1.5"
    assert doc["name"] == "foo"
    assert doc["versions"] == ["1.0+cpu", "2.0"]
    wheel, sdist = doc["files"]
    assert wheel["core-metadata"] == {"sha256": "b" * 64}
    assert "dist-info-metadata" not in wheel
    assert wheel["yanked"] is False
    assert wheel["upload-time"] == "2024-01-02T03:04:05.000000Z"
    assert wheel["url"].endswith("foo-1.0%2Bcpu-py3-none-any.whl")
    assert sdist["yanked"] is True
    assert "core-metadata" not in sdist
    nullable = {"requires-python", "provenance"}
    assert all(v is not None for f in doc["files"] for k, v in f.items() if k not in nullable)
    assert [f["provenance"] for f in doc["files"]] == [None, None]  # PEP 740: null, not absent
    assert ProjectPage.from_json_bytes(page.to_json_bytes()) == page


def test_root_listing() -> None:
    foo = {NormalizedName("foo-bar"): RootEntry("Foo.Bar")}
    root = RootListing().with_projects(foo)
    assert root.with_projects(foo) is root
    assert '<a href="foo-bar/">Foo.Bar</a>' in render_root_html(root).decode()
    assert json.loads(root.to_json_bytes())["projects"][0]["name"] == "Foo.Bar"
    assert RootListing.from_json_bytes(root.to_json_bytes()) == root


def test_a_root_listing_entry_costs_its_name_and_summary_only() -> None:
    """A project adds ``{"name":...}`` and its summary to ``/simple/``, nothing more: the
    normalized name is the name's own (PEP 503), and a reader derives it (it was a quarter of
    the listing's bytes, measured at 1,000 and 100,000 projects)."""
    one = RootListing().with_projects({NormalizedName("foo-bar"): RootEntry("Foo.Bar")})
    two = one.with_projects({NormalizedName("baz-qux"): RootEntry("Baz_Qux", "A summary")})
    grown = len(two.to_json_bytes()) - len(one.to_json_bytes())
    assert grown == len(',{"name":"Baz_Qux","_summary":"A summary"}')
    assert RootListing.from_json_bytes(two.to_json_bytes()) == two


def test_a_root_listing_stored_with_normalized_names_reads_the_same() -> None:
    earlier = (
        b'{"meta":{"api-version":"1.1","_last-serial":7},"projects":'
        b'[{"name":"Foo.Bar","_normalized":"foo-bar","_summary":"S"},'
        b'{"name":"baz","_normalized":"baz"}]}\n'
    )
    root = RootListing.from_json_bytes(earlier)
    assert root.projects == {"foo-bar": "Foo.Bar", "baz": "baz"}
    assert root.summaries == {"foo-bar": "S"}
    assert root.serial == 7


def test_a_display_name_of_another_project_is_listed_as_the_project() -> None:
    """The listing names a project by its display name only: one that normalizes to another
    project (a page edited by hand) would move it, so the normalized name is shown."""
    root = RootListing().with_projects({NormalizedName("foo"): RootEntry("Bar")})
    assert root.projects == {"foo": "foo"}
    assert RootListing.from_json_bytes(root.to_json_bytes()) == root


# -- tokens ----------------------------------------------------------------------------------


def test_token_scopes_and_projects() -> None:
    token = new_token()
    scoped = TokenRecord.create(token, name="", scopes={"upload"}, projects={"Billing_Core"})
    assert scoped.allows("upload", "billing-core")
    assert not scoped.allows("upload", "ml-models")
    assert not scoped.allows("admin", "billing-core")
    assert scoped.allows("read", None)
    admin = TokenRecord.create(token, name="", scopes={"admin"}, projects=None)
    assert admin.allows("upload", "anything")
    reader = TokenRecord.create(token, name="", scopes={"read"}, projects=None)
    assert not reader.allows("upload", "x")
    assert token not in json.dumps(admin.to_json())
    with pytest.raises(ValueError, match="scopes"):
        TokenRecord.create(token, name="", scopes={"root"}, projects=None)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("Bearer x", None),
        ("Basic", None),
        ("Basic !!!", None),
        ("Basic X19fdG9rZW5fXzpza3lwaV9h", "skypi_a"),  # __token__:skypi_a
        ("Basic c2t5cGlfYTo=", "skypi_a"),  # skypi_a: (token as username)
        ("basic c2t5cGlfYQ==", None),  # no colon
        ("Basic X190b2tlbl9fOg==", None),  # __token__: (no password: 401, pip asks keyring)
        ("Basic YWxpY2U6", None),  # alice: (no password, and the username is no token)
        ("\tBasic  X19fdG9rZW5fXzpza3lwaV9h \t", "skypi_a"),  # spaces and tabs only
        ("Basic X19fdG9rZW5fXzpza3lwaV9h\x1f", None),  # not str.strip()'s whitespace
        ("Basic X19fdG9rZW5fXzpza3lwaV9h\xa0", None),  # nor trim()'s
        ("Basic X19fdG9rZW5fXzpza3lwaV9", None),  # unpadded
        ("Basic X19fdG9rZW5fXzpza3lwaV9h=", None),  # over-padded
        ("Basic X190b2tlbl9fOv8=", None),  # __token__:\xff, not UTF-8
        ("Basic \xe9\xe9\xe9\xe9", None),  # non-ASCII bytes, as a server decodes them
        ("Basic\tX19fdG9rZW5fXzpza3lwaV9h", None),  # the scheme ends at a space
    ],
)
def test_credentials_from_header(header: str | None, expected: str | None) -> None:
    assert credentials_from_header(header) == expected


def test_a_page_encodes_exactly_as_its_document() -> None:
    """The fast encoder (entries made once, spliced) gives json.dumps's very bytes, for every
    shape of page: files, a summary, a status with its reason, quarantined files."""
    import json
    from dataclasses import replace
    from datetime import UTC, datetime

    from skypi.core.pages import FileEntry, ProjectPage, held_digest

    now = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    files = tuple(
        FileEntry(f"demo-1.{i}.tar.gz", f"packages/demo/demo-1.{i}.tar.gz", f"1.{i}", "ab" * 32,
                  10 + i, now, ">=3.9" if i else None, "cd" * 32 if i % 2 else None,
                  "gone" if i == 2 else None, f'"{i}"', "../p" if i == 1 else None)
        for i in range(4)
    )  # fmt: skip
    page = replace(ProjectPage.empty("Demo").with_files(files), summary='A "quoted" \u00e9 summary')
    for shape in (
        page,
        ProjectPage.empty("Demo"),
        page.with_status("deprecated", "use other"),
        page.with_status("quarantined", "malware"),
    ):
        expected = json.dumps(shape.to_json_doc(), separators=(",", ":")).encode() + b"\n"
        assert shape.to_json_bytes() == expected
        held = shape.held_files()  # a quarantine's files: beside the page, by their digest
        stored = {held_digest(held): held} if held is not None else {}
        assert ProjectPage.from_json_bytes(shape.to_json_bytes(), stored.__getitem__) == shape


def test_the_landing_page_carries_its_manifest_inert() -> None:
    """The landing page's manifest rides in a data block: no name can close it or run."""
    from datetime import UTC, datetime

    from packaging.utils import NormalizedName

    from skypi.core.landing import SiteSummary, Upload
    from skypi.core.site import render_landing

    hostile = "</script><script>alert(1)</script><!--"
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    summary = SiteSummary(projects=1, root_serial=7).with_uploads(
        [Upload(NormalizedName("x"), hostile, "1.0", f"{hostile}.whl", moment)]
    )
    html = render_landing(summary).decode()
    block = html.split('<script type="application/json" id="skypi-site">')[1].split("</script>")[0]
    assert "<" not in block
    assert ">" not in block
    assert SiteSummary.from_landing(html.encode()) == summary
    assert SiteSummary.from_landing(b"<p>no manifest</p>") is None
    broken = html.replace('"projects":1', '"projects":"many"').encode()
    assert SiteSummary.from_landing(broken) is None
