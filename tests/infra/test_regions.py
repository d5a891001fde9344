"""Deploying to any commercial region: what CloudFront requires in us-east-1 (the CLOUDFRONT
web ACL, a custom domain's certificate, a bucket it delivers standard logs to) is made there
by the companion stack, and the index's stack reads it by cross-region references.

Synthesized with the pinned CLI for us-east-1 and af-south-1 (a Region CloudFront does not
deliver standard logs to, docs/deploy.md), both with the WAF and a custom domain; with no
account or region at all (an offline ``make synth``); and, in the shared synthesis,
eu-west-1."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App

from infra.app import build
from infra.config import Config
from tests.infra.conftest import ACCOUNT, REGION, Synth, run_synth

# The cases: (context, the region it leads to).
CASES = {
    "us-east-1": (
        {
            "skypi:account": ACCOUNT,
            "skypi:region": "us-east-1",
            "skypi:waf": "true",
            "skypi:domainName": "pypi.example.com",
        },
        "us-east-1",
    ),
    "af-south-1": (
        {
            "skypi:account": ACCOUNT,
            "skypi:region": "af-south-1",
            "skypi:waf": "true",
            "skypi:domainName": "pypi.example.com",
            "skypi:viewConcurrency": "10",  # an account whose quota allows a reservation
        },
        "af-south-1",
    ),
    "no account or region": ({}, "us-east-1"),
}


@pytest.fixture(scope="module", params=list(CASES))
def regional(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context, region = CASES[request.param]
    return run_synth(tmp_path_factory.mktemp("cdk.out"), context, region)


def _environments(synth: Synth) -> dict[str, str]:
    manifest = json.loads((synth.out / "manifest.json").read_text())
    return {
        name: artifact["environment"]
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    }


def _distribution(synth: Synth) -> dict[str, Any]:
    (distribution,) = synth.resources("AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


def _from_companion(value: Any, logical_id: str) -> bool:
    """A value the main stack reads from the companion's resource ``logical_id``: an import
    in the same region, an SSM-backed cross-region read otherwise."""
    text = json.dumps(value)
    return logical_id in text and ("Fn::ImportValue" in text or "ExportsReader" in text)


def test_the_companion_is_in_us_east_1_and_the_index_where_asked(regional: Synth) -> None:
    environments = _environments(regional)
    assert environments[f"Skypi-global-{regional.region}"].endswith("/us-east-1")
    assert environments["Skypi"].endswith(f"/{regional.region}")


def test_the_shared_synthesis_is_eu_west_1_with_its_companion_in_us_east_1(synth: Synth) -> None:
    environments = _environments(synth)
    assert environments == {
        "Skypi": f"aws://{ACCOUNT}/{REGION}",
        f"Skypi-global-{REGION}": f"aws://{ACCOUNT}/us-east-1",
    }
    assert synth.resources("Custom::CrossRegionExportReader")
    assert synth.companion_resources("Custom::CrossRegionExportWriter")


def test_the_cloudfront_web_acl_is_made_in_us_east_1_only(regional: Synth) -> None:
    """A CLOUDFRONT-scoped web ACL can only be created in us-east-1 (AWS WAF developer guide);
    anywhere else CloudFormation answers "The scope is not valid"."""
    assert not regional.resources("AWS::WAFv2::WebACL")
    acls = regional.companion_resources("AWS::WAFv2::WebACL")
    if not acls:  # the offline default: no WAF asked for
        assert "WebACLId" not in _distribution(regional)
        return
    ((acl_id, acl),) = acls.items()
    assert acl["Properties"]["Scope"] == "CLOUDFRONT"
    assert _from_companion(_distribution(regional)["WebACLId"], acl_id)


def test_standard_logs_go_to_a_bucket_in_us_east_1(regional: Synth) -> None:
    """CloudFront does not deliver standard logs (legacy) to buckets in some Regions
    (af-south-1 among them); us-east-1 is not one of them."""
    logging = _distribution(regional)["Logging"]
    (logs,) = [k for k in regional.companion_resources("AWS::S3::Bucket") if "CloudFrontLogs" in k]
    assert _from_companion(logging["Bucket"], logs)
    bucket = regional.companion["Resources"][logs]["Properties"]
    # Legacy standard logs are written with an ACL grant: ACLs must stay enabled.
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    assert all("CloudFrontLogs" not in k for k in regional.resources("AWS::S3::Bucket"))


def test_a_custom_domain_gets_its_certificate_in_us_east_1(regional: Synth) -> None:
    """CloudFront takes an ACM certificate from us-east-1 only; with a domain and no
    certificate ARN, the companion requests one there."""
    assert not regional.resources("AWS::CertificateManager::Certificate")
    certificates = regional.companion_resources("AWS::CertificateManager::Certificate")
    if not certificates:  # the offline default: no domain
        assert "AcmCertificateArn" not in json.dumps(_distribution(regional))
        return
    viewer = _distribution(regional)["ViewerCertificate"]
    ((certificate_id, certificate),) = certificates.items()
    assert certificate["Properties"]["DomainName"] == "pypi.example.com"
    assert certificate["Properties"]["ValidationMethod"] == "DNS"
    assert _from_companion(viewer["AcmCertificateArn"], certificate_id)
    assert viewer["MinimumProtocolVersion"] == "TLSv1.2_2021"
    assert _distribution(regional)["Aliases"] == ["pypi.example.com"]


def test_the_view_lambda_reserves_what_the_context_says_and_knows_a_custom_domain(
    regional: Synth,
) -> None:
    """No concurrency is reserved unless ``skypi:viewConcurrency`` asks (Lambda keeps 100 of an
    account's quota unreserved, and a new account's quota may be 10: a reservation by default
    would fail its first deploy); a custom domain is the index's
    address in the view Lambda too (CloudFront's own domain would be a dependency cycle)."""
    [function] = [
        f["Properties"]
        for k, f in regional.resources("AWS::Lambda::Function").items()
        if k.startswith("ViewsFunction")
    ]
    reserved = 10 if regional.region == "af-south-1" else None  # the case that asks for 10
    assert function.get("ReservedConcurrentExecutions") == reserved
    variables = function["Environment"]["Variables"]
    aliases = _distribution(regional).get("Aliases")
    if aliases:
        assert variables["SKYPI_INDEX_URL"] == f"https://{aliases[0]}"
    else:
        assert "SKYPI_INDEX_URL" not in variables


def test_cdk_nag_passed_on_both_stacks(regional: Synth) -> None:
    report = json.loads((regional.out / "validation-report.json").read_text())
    assert report["pluginReports"]
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin["pluginName"]
    tree = json.dumps(json.loads((regional.out / "tree.json").read_text()))
    assert "Skypi-global-" in tree  # both stacks were in the app the plugin checked


def test_a_certificate_outside_us_east_1_is_refused_before_deploying() -> None:
    def config(**context: str) -> Config:
        return Config.from_context(App(context=context).node)

    with pytest.raises(ValueError, match=r"us-east-1.*'eu-west-1'"):
        config(
            **{
                "skypi:domainName": "pypi.example.com",
                "skypi:certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
            }
        )
    with pytest.raises(ValueError, match="needs skypi:domainName"):
        config(**{"skypi:certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/a"})
    ok = config(
        **{
            "skypi:domainName": "pypi.example.com",
            "skypi:certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc",
        }
    )
    assert (ok.domain_name, ok.certificate_arn) == (
        "pypi.example.com",
        "arn:aws:acm:us-east-1:123456789012:certificate/abc",
    )


def test_a_pricing_plan_outside_us_east_1_is_refused_before_deploying() -> None:
    """The plan's subscription is made through the PricingPlanManager API, whose endpoint is
    in us-east-1 only (PricingPlanManager user guide, "Getting started")."""
    app = App(context={"skypi:pricingPlan": "free", "skypi:region": "eu-west-1"})
    with pytest.raises(ValueError, match="PricingPlanManager"):
        build(app)
