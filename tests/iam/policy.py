"""An IAM policy evaluator for the subset of the policy language the stack's roles use.

The rule it applies (identity-based policies of one role, in one account): a request is denied
if any statement that applies to it is a ``Deny``; otherwise allowed if any applicable statement
is an ``Allow``; otherwise denied by default (IAM User Guide, "Policy evaluation logic",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html).
A statement applies when its Action (or NotAction), its Resource (or NotResource) and every
Condition match. Actions match case-insensitively; resources case-sensitively, with ``*`` for
any run of characters, ``/`` included, and ``?`` for one character
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).

moto ships an evaluator too (``moto.iam.access_control``); it is not used here because it turns
a Condition that does not hold into an explicit Deny, reads ``.`` in a pattern as a regular
expression, and compares actions case-sensitively. Anything this module does not understand (a
condition operator, a Principal, an unknown element) raises :class:`Unsupported` instead of
being allowed or ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

ELEMENTS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}


class Unsupported(ValueError):
    """A policy element or operator this evaluator does not implement."""


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "denied by default (no statement allows it)"


@dataclass(frozen=True)
class Request:
    """One authorization request: an action on a resource ARN, with its condition keys."""

    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        keys = "".join(f" {k}={list(v)}" for k, v in sorted(self.context.items()))
        return f"{self.action} {self.resource}{keys}"


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(glob: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters (``/`` included), ``?`` one.

    >>> matches("arn:aws:s3:::b/packages/*", "arn:aws:s3:::b/packages/a/b.whl")
    True
    >>> matches("arn:aws:s3:::b/packages/*.metadata", "arn:aws:s3:::b/packages/a/bXmetadata")
    False
    >>> matches("s3:get*", "s3:GetObject", ignore_case=True)
    True
    """
    return _pattern(glob, ignore_case).fullmatch(value) is not None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _string_test(operator: str, wanted: list[str], value: str) -> bool:
    if operator == "StringEquals":
        return value in wanted
    if operator == "StringLike":
        return any(matches(w, value) for w in wanted)
    raise Unsupported(f"condition operator {operator!r}")


def _condition_holds(operator: str, key: str, wanted: Any, request: Request) -> bool:
    values = request.context.get(key)
    wanted = [str(w) for w in _listed(wanted)]
    qualifier, _, base = operator.rpartition(":")
    if base.endswith("IfExists"):
        raise Unsupported(f"condition operator {operator!r}")
    if qualifier == "ForAllValues":  # every value in the request is among the wanted ones;
        return all(_string_test(base, wanted, v) for v in values or [])  # none: vacuously
    if qualifier == "ForAnyValue":
        return any(_string_test(base, wanted, v) for v in values or [])
    if qualifier:
        raise Unsupported(f"condition qualifier {qualifier!r}")
    if values is None:  # a single-valued test of a key the request lacks does not match
        _string_test(base, wanted, "")  # still refuse an operator this does not know
        return False
    if len(values) != 1:
        raise Unsupported(f"single-valued {operator} on multivalued key {key}")
    return _string_test(base, wanted, values[0])


@dataclass(frozen=True)
class Statement:
    document: Mapping[str, Any]

    def __post_init__(self) -> None:
        unknown = set(self.document) - ELEMENTS
        if unknown:
            raise Unsupported(f"statement element(s) {sorted(unknown)}")
        if self.document.get("Effect") not in {"Allow", "Deny"}:
            raise Unsupported(f"Effect {self.document.get('Effect')!r}")
        if ("Action" in self.document) == ("NotAction" in self.document):
            raise Unsupported("a statement needs exactly one of Action and NotAction")
        if ("Resource" in self.document) == ("NotResource" in self.document):
            raise Unsupported("a statement needs exactly one of Resource and NotResource")
        for operator, keys in self.document.get("Condition", {}).items():
            for key, wanted in keys.items():  # refuse unknown operators up front
                _condition_holds(operator, key, wanted, Request("x:X", "*", {key: ["probe"]}))

    @property
    def allows(self) -> bool:
        return bool(self.document["Effect"] == "Allow")

    def _element(self, name: str, value: str, ignore_case: bool) -> bool:
        if name in self.document:
            return any(matches(p, value, ignore_case) for p in _listed(self.document[name]))
        return not any(matches(p, value, ignore_case) for p in _listed(self.document[f"Not{name}"]))

    def applies_to(self, request: Request) -> bool:
        return (
            self._element("Action", request.action, ignore_case=True)
            and self._element("Resource", request.resource, ignore_case=False)
            and all(
                _condition_holds(operator, key, wanted, request)
                for operator, keys in self.document.get("Condition", {}).items()
                for key, wanted in keys.items()
            )
        )


def statements(documents: Iterable[Mapping[str, Any]]) -> list[Statement]:
    """The statements of policy documents (each ``{"Version": ..., "Statement": [...]}``)."""
    found = []
    for document in documents:
        if document.get("Version") != "2012-10-17":
            raise Unsupported(f"policy Version {document.get('Version')!r}")
        found += [Statement(s) for s in _listed(document["Statement"])]
    return found


def evaluate(policy: Sequence[Statement], request: Request) -> Decision:
    applicable = [s for s in policy if s.applies_to(request)]
    if any(not s.allows for s in applicable):
        return Decision.EXPLICIT_DENY
    return Decision.ALLOWED if applicable else Decision.IMPLICIT_DENY
