"""The synthesized template's roles, with CloudFormation's intrinsics resolved to the names of
the resources a test made (its bucket, queues, tables, distribution, KeyValueStore)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.synth import only_resource

from tests.iam.policy import Statement, Unsupported, statements

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
PARTITION = "aws"

# The functions whose roles the tier checks, by the start of their logical IDs.
FUNCTIONS = {
    "indexer": "IndexerFunction",
    "api": "ApiFunction",
    "sync": "AuthSync",
    "view": "ViewsFunction",
}


@dataclass(frozen=True)
class Deployment:
    """What a test stood up in moto in place of the stack's resources."""

    bucket: str
    queue: str
    dead_letters: str
    sync_failures: str
    token_table: str
    token_stream_arn: str
    publisher_table: str
    distribution_id: str
    kvs_arn: str
    invalidations: str
    invalidation_dead_letters: str
    schedule_group: str = "skypi-views"
    scheduler_role: str = "skypi-view-scheduler"
    view_function: str = "skypi-view"

    @property
    def scheduler_role_arn(self) -> str:
        return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{self.scheduler_role}"

    def queue_arn(self, name: str) -> str:
        return f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}"

    def table_arn(self, name: str) -> str:
        return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

    def physical(self, logical_prefix: str) -> dict[str, str]:
        """``Ref`` and the attributes CloudFormation gives the resource whose logical ID starts
        with ``logical_prefix``."""
        known: dict[str, dict[str, str]] = {
            "StorageIndex": {"Ref": self.bucket, "Arn": f"arn:{PARTITION}:s3:::{self.bucket}"},
            "IndexerEvents": {"Arn": self.queue_arn(self.queue)},
            "IndexerDeadLetters": {"Arn": self.queue_arn(self.dead_letters)},
            "AuthSyncFailures": {"Arn": self.queue_arn(self.sync_failures)},
            "AuthTokens": {
                "Ref": self.token_table,
                "Arn": self.table_arn(self.token_table),
                "StreamArn": self.token_stream_arn,
            },
            "AuthPublishers": {
                "Ref": self.publisher_table,
                "Arn": self.table_arn(self.publisher_table),
            },
            "CdnDistribution": {"Ref": self.distribution_id},
            "AuthTokenMirror": {"Arn": self.kvs_arn},
            "InvalidationsPending": {"Arn": self.queue_arn(self.invalidations)},
            "InvalidationsDeadLetters": {"Arn": self.queue_arn(self.invalidation_dead_letters)},
            "ViewsSchedules": {
                "Ref": self.schedule_group,
                "Arn": f"arn:{PARTITION}:scheduler:{REGION}:{ACCOUNT}:schedule-group/"
                f"{self.schedule_group}",
            },
            "ViewsSchedulerRole": {"Arn": self.scheduler_role_arn},
            "ViewsFunction": {
                "Arn": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{self.view_function}"
            },
        }
        return known[logical_prefix]


PSEUDO = {"AWS::Partition": PARTITION, "AWS::AccountId": ACCOUNT, "AWS::Region": REGION}


class Resolver:
    def __init__(self, template: Mapping[str, Any], deployment: Deployment) -> None:
        self.template = template
        self.deployment = deployment

    def _attribute(self, logical_id: str, attribute: str) -> str:
        for prefix in (
            "StorageIndex",
            "IndexerEvents",
            "IndexerDeadLetters",
            "AuthSyncFailures",
            "AuthTokens",
            "AuthPublishers",
            "CdnDistribution",
            "AuthTokenMirror",
            "InvalidationsPending",
            "InvalidationsDeadLetters",
            "ViewsSchedules",
            "ViewsSchedulerRole",
            "ViewsFunction",
        ):
            if logical_id.startswith(prefix):
                values = self.deployment.physical(prefix)
                if attribute in values:
                    return values[attribute]
        raise Unsupported(f"no test resource stands for {logical_id}.{attribute}")

    def resolve(self, value: Any) -> Any:
        """``value`` with every Ref, Fn::GetAtt and Fn::Join replaced by its string."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return PSEUDO.get(argument) or self._attribute(argument, "Ref")
            if name == "Fn::GetAtt":
                return self._attribute(argument[0], argument[1])
            if name == "Fn::Join":
                separator, parts = argument
                return separator.join(str(self.resolve(p)) for p in parts)
            if name.startswith("Fn::"):
                raise Unsupported(f"intrinsic {name}")
        return {k: self.resolve(v) for k, v in value.items()}


def _function(template: Mapping[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    prefix = FUNCTIONS[name]
    return only_resource(template, "AWS::Lambda::Function", lambda k, _: k.startswith(prefix))


def role_id(template: Mapping[str, Any], function: str) -> str:
    """The logical ID of the execution role of ``function`` (indexer, api, sync or view)."""
    _, resource = _function(template, function)
    role = resource["Properties"]["Role"]
    if set(role) != {"Fn::GetAtt"} or role["Fn::GetAtt"][1] != "Arn":
        raise Unsupported(f"the {function} function's Role is {role}")
    return str(role["Fn::GetAtt"][0])


def policy_documents(template: Mapping[str, Any], role: str) -> list[tuple[str, dict[str, Any]]]:
    """(policy logical ID, document) of every AWS::IAM::Policy attached to ``role``, and the
    role's own inline Policies; AWS managed policies are listed in :func:`managed_policies`."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":
            if {"Ref": role} in resource["Properties"].get("Roles", []):
                found.append((logical_id, resource["Properties"]["PolicyDocument"]))
        elif resource["Type"] in {"AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"}:
            raise Unsupported(f"{resource['Type']} {logical_id}: not read by this tier yet")
    for inline in template["Resources"][role]["Properties"].get("Policies", []):
        found.append((f"{role}.{inline['PolicyName']}", inline["PolicyDocument"]))
    return found


def managed_policies(template: Mapping[str, Any], role: str) -> list[Any]:
    return list(template["Resources"][role]["Properties"].get("ManagedPolicyArns", []))


@dataclass(frozen=True)
class Grant:
    """One statement of a role's policies, resolved, with where it came from."""

    policy: str
    index: int
    statement: Statement

    @property
    def label(self) -> str:
        return f"{self.policy}[{self.index}]"


def grants(template: Mapping[str, Any], function: str, deployment: Deployment) -> list[Grant]:
    """Every statement the ``function``'s role is given by the template, resolved."""
    resolver = Resolver(template, deployment)
    found = []
    for policy, document in policy_documents(template, role_id(template, function)):
        for index, statement in enumerate(statements([resolver.resolve(document)])):
            found.append(Grant(policy, index, statement))
    return found


def resolved_documents(
    template: Mapping[str, Any], function: str, deployment: Deployment
) -> list[tuple[str, dict[str, Any]]]:
    """The role's policy documents as JSON IAM would hold them (for moto's IAM)."""
    resolver = Resolver(template, deployment)
    role = role_id(template, function)
    return [(name, resolver.resolve(doc)) for name, doc in policy_documents(template, role)]
