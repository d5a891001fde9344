"""The bucket that is the index, and the bucket its S3 server access logs go to, side by
side in the stack's region (CloudFront's standard logs go to the companion stack's bucket in
us-east-1: infra/companion.py)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import Config


def log_bucket(scope: Construct, construct_id: str, *, config: Config) -> s3.Bucket:
    """A bucket for logs delivered with an ACL grant (S3 server access logs, CloudFront's
    standard logs): private, encrypted, TLS only, each log kept a year."""
    return s3.Bucket(
        scope,
        construct_id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        auto_delete_objects=not config.retain_data,
    )


class Storage(Construct):
    """Private, versioned, encrypted, TLS-only; old versions expire, access is logged."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        self.logs = log_bucket(self, "AccessLogs", config=config)
        lock = (
            s3.ObjectLockRetention.governance(Duration.days(config.retention_days))
            if config.retention_days
            else None
        )
        self.bucket = s3.Bucket(
            self,
            "Index",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,  # an overwritten or deleted file can always be restored
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="s3/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(config.noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                    expired_object_delete_marker=True,
                )
            ],
            object_lock_enabled=bool(lock) or None,
            object_lock_default_retention=lock,
            removal_policy=removal,
            auto_delete_objects=not config.retain_data,
        )
