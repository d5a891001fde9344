"""The pages for people on the S3 path: the indexer Lambda, fed by S3 events, writes them with
the types and caching a static origin (S3 behind CloudFront) must send."""

from __future__ import annotations

from skypi.core.http import REVALIDATE
from skypi.core.keys import LANDING_KEY, project_site_key, release_key
from skypi.core.landing import SiteSummary
from skypi.core.pages import ProjectPage
from skypi.core.release import Release
from skypi.core.site import render_landing, render_project_site
from tests.aws.conftest import Emulated
from tests.dists import metadata_text, wheel_bytes, wheel_name


def test_dropped_files_get_their_pages_for_people(aws: Emulated) -> None:
    metadata = (
        metadata_text("Demo", "1.0", summary="A demo").rstrip("\n")
        + "\nDescription-Content-Type: text/markdown\n\n# Demo\n\n<script>x()</script>\n"
    )
    key = "packages/demo/" + wheel_name("demo", "1.0")
    aws.drop(key, wheel_bytes("Demo", "1.0", metadata=metadata))
    assert aws.poller.drain() == 1
    for site_key in (LANDING_KEY, project_site_key("demo")):  # type: ignore[arg-type]
        head = aws.s3.head_object(Bucket=aws.resources.bucket, Key=site_key)
        assert head["ContentType"] == "text/html; charset=utf-8"
        assert head["CacheControl"] == REVALIDATE  # as the index pages
    # The very bytes the pure renderers make from the stored manifests (as skypi serve does).
    page = ProjectPage.from_json_bytes(aws.page("simple/demo/index.json"))
    release = Release.from_json_bytes(aws.page(release_key("demo", "1.0")))  # type: ignore[arg-type]
    assert "<h1>Demo</h1>" in release.description_html
    assert "<script>x()" not in release.description_html
    assert aws.page(project_site_key("demo")) == render_project_site(page, release)  # type: ignore[arg-type]
    summary = SiteSummary.from_landing(aws.page(LANDING_KEY))  # the page carries its manifest
    assert summary is not None
    assert summary.projects == 1
    assert [u.filename for u in summary.recent] == [wheel_name("demo", "1.0")]
    assert aws.page(LANDING_KEY) == render_landing(summary)
