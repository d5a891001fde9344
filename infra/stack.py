"""The skypi stack: storage, indexer, API, views and CDN, and the lines a user pastes next."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.api import Api, oidc_audience
from infra.auth import Auth
from infra.cdn import Cdn
from infra.companion import CompanionStack
from infra.config import Config
from infra.functions import function_code
from infra.indexer import Indexer
from infra.invalidations import Invalidations
from infra.storage import Storage
from infra.views import Views
from skypi.core.constants import INDEX_URL_VARIABLE


class SkypiStack(Stack):
    """The index, in any region; what CloudFront needs in us-east-1 comes from ``companion``
    (infra/companion.py) by cross-region references."""

    def __init__(
        self, scope: Construct, construct_id: str, *, companion: CompanionStack, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, cross_region_references=True, **kwargs)
        config = Config.from_context(self.node)
        self.config = config
        storage = Storage(self, "Storage", config=config)
        code = function_code(config)
        alarm_topic = None
        if config.alarm_email:
            alarm_topic = sns.Topic(self, "Alarms", enforce_ssl=True)
            alarm_topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.storage = storage
        self.indexer = Indexer(
            self,
            "Indexer",
            config=config,
            bucket=storage.bucket,
            code=code,
            alarm_topic=alarm_topic,
        )
        self.auth = Auth(self, "Auth", config=config, code=code, alarm_topic=alarm_topic)
        self.api = Api(self, "Api", config=config, bucket=storage.bucket, code=code, auth=self.auth)
        self.indexer.allow_root_rebuilds(self.api.function)
        self.views = Views(self, "Views", config=config, bucket=storage.bucket, code=code)
        self.cdn = Cdn(
            self,
            "Cdn",
            config=config,
            bucket=storage.bucket,
            logs=companion.logs,
            api=self.api.http_api,
            tokens=self.auth.mirror,
            views=self.views,
            web_acl_arn=companion.web_acl.attr_arn if companion.web_acl else None,
            certificate=companion.certificate,
        )
        self.invalidations = Invalidations(
            self,
            "Invalidations",
            config=config,
            code=code,
            distribution=self.cdn.distribution,
            senders=[self.api.function, self.indexer.function],
            alarm_topic=alarm_topic,
        )
        self.views.queue_invalidations(self.invalidations.queue)
        self._address(config)
        self._outputs(config)

    def _host(self, config: Config) -> str:
        """Where users reach the index: the custom domain, else CloudFront's own."""
        return config.domain_name or self.cdn.distribution.distribution_domain_name

    def _address(self, config: Config) -> None:
        """The functions that render the pages for people write this address into their
        setup lines. The distribution depends on the API's HTTP API, not on its function, so
        giving the function the distribution's domain makes no cycle."""
        for function in (self.api.function, self.indexer.function):
            function.add_environment(INDEX_URL_VARIABLE, f"https://{self._host(config)}")

    def _outputs(self, config: Config) -> None:
        host = self._host(config)
        index = f"https://{host}/simple/"
        upload = f"https://{host}/legacy/"
        bucket = self.storage.bucket.bucket_name
        outputs = {
            "IndexUrl": (index, "pip and uv install from here"),
            "UploadUrl": (upload, "twine and uv publish upload here"),
            "BucketName": (bucket, "the bucket that is the index"),
            "DistributionDomain": (
                self.cdn.distribution.distribution_domain_name,
                "point a custom domain's DNS (CNAME or alias) here",
            ),
            "ApiUrl": (self.api.http_api.api_endpoint, "the API directly (also a full index)"),
            "TokenTable": (self.auth.table.table_name, "where tokens live (hashes only)"),
            "PublisherTable": (
                self.auth.publishers.table_name,
                "trusted publishers: skypi publisher add ... --table THIS",
            ),
            "EdgeRecords": (
                self.auth.mirror.key_value_store_arn,
                "the edge's token hashes and quarantine records: skypi reindex --kvs-arn THIS",
            ),
            "OidcAudience": (oidc_audience(config), "the audience CI OIDC tokens must carry"),
            **self._how_to(config, index, upload, bucket),
        }
        plan = getattr(self.cdn, "plan", None)
        if plan is not None and config.pricing_plan != "free":  # paid tiers wait for approval
            outputs["PricingPlanSubscription"] = (
                plan.attr_arn,
                "approve it to start the flat-rate plan: aws pricing-plan-manager "
                "approve-paid-subscription --arn ARN --if-match ETAG (docs/deploy.md)",
            )
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

    def _how_to(
        self, config: Config, index: str, upload: str, bucket: str
    ) -> dict[str, tuple[str, str]]:
        """The outputs that are commands: a token, installing, uploading, dropping a file in."""
        return {
            "CreateToken": (
                f"skypi token create --table {self.auth.table.table_name} --scope upload --name ci",
                "make a token (shown once) with your AWS credentials; --scope read for pip",
            ),
            "PipInstall": (
                f"pip install --index-url {index} PACKAGE"
                + (
                    "  (token in ~/.netrc: machine HOST login __token__ password TOKEN)"
                    if config.read_mode == "private"
                    else ""
                ),
                "install with pip",
            ),
            "UvInstall": (f"uv pip install --index-url {index} PACKAGE", "install with uv"),
            "TwineUpload": (
                f"twine upload --repository-url {upload} -u __token__ -p TOKEN dist/*",
                "upload with twine",
            ),
            "UvPublish": (
                f"uv publish --publish-url {upload} --token TOKEN dist/*",
                "upload with uv",
            ),
            "Pypirc": (
                f"[distutils] index-servers = skypi | [skypi] repository = {upload} "
                "username = __token__ password = TOKEN",
                "~/.pypirc, one line per '|'-separated part; then twine upload -r skypi dist/*",
            ),
            "S3Copy": (
                f"aws s3 cp dist/PACKAGE.whl s3://{bucket}/packages/",
                "publish any size by dropping the file in (indexed within seconds)",
            ),
        }
