"""What a deployment can choose, read from CDK context (``cdk.json`` or ``-c key=value``).

- ``skypi:architecture`` (``arm64``): Lambda architecture, ``arm64`` or ``x86_64``.
- ``skypi:noncurrentVersionDays`` (``90``): how long an overwritten or deleted object's old
  version is kept.
- ``skypi:retentionDays`` (none): S3 Object Lock, governance mode, on every version.
- ``skypi:retainData`` (``true``): keep the buckets when the stack is deleted.
- ``skypi:domainName`` (none): a custom domain; ``skypi:certificateArn`` (none): its ACM
  certificate, which must be in us-east-1 (without one, the companion stack in us-east-1
  requests one, validated by DNS).
- ``skypi:waf`` (``false``): a WAF web ACL (managed common rules, a per-IP rate limit).
- ``skypi:alarmEmail`` (none): an e-mail subscribed to the alarms' SNS topic.
- ``skypi:logRetentionDays`` (``90``): retention of the functions' and the API's logs.
- ``skypi:apiRateLimit`` / ``skypi:apiBurstLimit`` (``20`` / ``40``): API Gateway throttling.
- ``skypi:readMode`` (``private``): ``private`` reads need a token (checked at the edge);
  ``public`` lets anyone with the URL read.
- ``skypi:pricingPlan`` (none): a CloudFront flat-rate plan, ``free``, ``pro``, ``business``
  or ``premium`` (turns the WAF on: a plan includes one web ACL). Stack in us-east-1 (the
  PricingPlanManager API is only there).
- ``skypi:traceCalls`` (``false``): load the X-Ray SDK in the functions (Powertools' Tracer)
  to trace each AWS call; Lambda's own traces are on either way. It costs every cold start
  the SDK's import (docs/aws-runtime.md).
- ``skypi:oidcAudience`` (the domain name, else ``skypi-<account>-<region>-<stack>``): the
  audience of the CI tokens Trusted Publishing accepts.
- ``skypi:rootDelaySeconds`` (``30``): a new project is listed on ``/simple/`` within this
  many seconds of its first upload (installable at once); 0 to 900, SQS's DelaySeconds
  (docs/aws-runtime.md).
- ``skypi:viewConcurrency`` (``0``, none reserved): the view Lambda's reserved concurrency,
  which bounds its upstream work and its cost. None by default: new accounts have reduced
  concurrency quotas (10 is common) and Lambda keeps 100 of the quota unreserved, so a
  default reservation would fail a first deploy; set it once the quota is 100 above it.
- ``skypi:bundle`` (``true``): bundle the Lambda dependencies; ``false`` in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from constructs import Node

from skypi.core.constants import DEFAULT_ROOT_DELAY_SECONDS, MAX_ROOT_DELAY_SECONDS

_TRUE = {"1", "true", "yes", "on"}


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE


def _int(value: Any, default: int | None) -> int | None:
    return default if value in (None, "") else int(value)


@dataclass(frozen=True)
class Config:
    architecture: str = "arm64"
    noncurrent_version_days: int = 90
    retention_days: int | None = None
    retain_data: bool = True
    domain_name: str | None = None
    certificate_arn: str | None = None
    waf: bool = False
    alarm_email: str | None = None
    log_retention_days: int = 90
    api_rate_limit: int = 20
    api_burst_limit: int = 40
    bundle: bool = True
    read_mode: str = "private"
    pricing_plan: str | None = None
    trace_calls: bool = False
    oidc_audience: str | None = None
    root_delay_seconds: int = DEFAULT_ROOT_DELAY_SECONDS
    view_concurrency: int = 0

    @classmethod
    def from_context(cls, node: Node) -> Config:
        def get(key: str) -> Any:
            return node.try_get_context(f"skypi:{key}")

        config = cls(
            architecture=str(get("architecture") or cls.architecture),
            noncurrent_version_days=_int(get("noncurrentVersionDays"), 90) or 90,
            retention_days=_int(get("retentionDays"), None),
            retain_data=_flag(get("retainData"), True),
            domain_name=get("domainName") or None,
            certificate_arn=get("certificateArn") or None,
            waf=_flag(get("waf"), False),
            alarm_email=get("alarmEmail") or None,
            log_retention_days=_int(get("logRetentionDays"), 90) or 90,
            api_rate_limit=_int(get("apiRateLimit"), 20) or 20,
            api_burst_limit=_int(get("apiBurstLimit"), 40) or 40,
            bundle=_flag(get("bundle"), True),
            read_mode=str(get("readMode") or "private"),
            pricing_plan=(str(get("pricingPlan")).strip().lower() or None)
            if get("pricingPlan")
            else None,
            trace_calls=_flag(get("traceCalls"), False),
            oidc_audience=get("oidcAudience") or None,
            root_delay_seconds=_int(get("rootDelaySeconds"), DEFAULT_ROOT_DELAY_SECONDS) or 0,
            view_concurrency=_int(get("viewConcurrency"), 0) or 0,
        )
        if config.pricing_plan and not config.waf:  # a plan covers one web ACL: use it
            config = replace(config, waf=True)
        if config.read_mode not in {"private", "public"}:
            raise ValueError("skypi:readMode must be private or public")
        if config.pricing_plan not in {None, "free", "pro", "business", "premium"}:
            raise ValueError("skypi:pricingPlan must be free, pro, business or premium")
        if not 0 <= config.root_delay_seconds <= MAX_ROOT_DELAY_SECONDS:
            raise ValueError(
                f"skypi:rootDelaySeconds must be 0 to {MAX_ROOT_DELAY_SECONDS} (SQS's DelaySeconds)"
            )
        if config.architecture not in {"arm64", "x86_64"}:
            raise ValueError("skypi:architecture must be arm64 or x86_64")
        if config.view_concurrency < 0:
            raise ValueError("skypi:viewConcurrency must be 0 (none reserved) or more")
        if config.certificate_arn and not config.domain_name:
            raise ValueError("skypi:certificateArn needs skypi:domainName")
        if config.certificate_arn and certificate_region(config.certificate_arn) != "us-east-1":
            raise ValueError(
                "skypi:certificateArn must be a certificate in us-east-1, which CloudFront "
                f"requires (this one is in {certificate_region(config.certificate_arn)!r}); "
                "leave it out and the companion stack requests one there"
            )
        return config


def certificate_region(arn: str) -> str:
    """The region of an ACM certificate ARN (``arn:aws:acm:REGION:ACCOUNT:certificate/ID``).

    >>> certificate_region("arn:aws:acm:eu-west-1:123456789012:certificate/abc")
    'eu-west-1'
    >>> certificate_region("not an arn")
    ''
    """
    parts = arn.split(":")
    return parts[3] if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "acm" else ""
