"""Names for CloudFront resources, which are global to the account: two stacks of the same
name in two regions would otherwise collide on them (KeyValueStore, response headers
policies, origin access control). CDK already puts the region into the function's and the
cache policy's generated names; these follow suit."""

from __future__ import annotations

from aws_cdk import Aws, Names
from constructs import Construct

_REGION_ROOM = 16  # "-" and the longest region name (ap-southeast-5, us-gov-west-1, ...)


def regional_name(scope: Construct, max_length: int) -> str:
    """The construct's unique name with the stack's region appended, within ``max_length``."""
    base = Names.unique_resource_name(scope, max_length=max_length - _REGION_ROOM, separator="-")
    return f"{base}-{Aws.REGION}"
