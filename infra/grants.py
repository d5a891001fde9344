"""Each function's rights on the bucket's objects, derived from the key layout.

``skypi.core.keys`` says which role may read, write or delete each family of keys and under
which pattern; here that becomes IAM statements, one per kind of access. A family the code
writes is granted to the role that writes it by construction (tests/infra/test_key_layout.py
holds the synthesized template to the layout), and cdk-nag's acknowledgements of the
wildcards (infra/nag.py) name the same patterns.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from skypi.core.keys import ACCESSES, Access, Role, grants

# The IAM actions of each kind of access (the S3 API reference's "Permissions" of each call):
# HeadObject needs GetObject; CopyObject needs PutObject on its target; a multipart upload's
# create, part and complete calls need PutObject, its abort and part listing their own.
ACTIONS: Final[dict[Access, list[str]]] = {
    "read": ["s3:GetObject"],
    "write": ["s3:PutObject"],
    "delete": ["s3:DeleteObject"],
    "versions": ["s3:GetObjectVersion"],
    "multipart": ["s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
}


def object_statements(bucket: s3.IBucket, role: Role) -> list[iam.PolicyStatement]:
    """One statement per kind of access ``role`` has, on the patterns the layout grants it."""
    statements = []
    for access in ACCESSES:
        patterns = grants(role, access)
        if patterns:
            resources = [bucket.arn_for_objects(pattern) for pattern in patterns]
            statements.append(iam.PolicyStatement(actions=ACTIONS[access], resources=resources))
    return statements
