"""The optional web ACL lets real uploads through: its rule configuration, as synthesized,
evaluated against a realistic twine upload body.

AWS's managed rules are not available offline, so the two body signatures a README trips
(``../`` for the core rule set's LFI rule, HTML for its XSS rule) are stood in for by simple
matches; everything else is the synthesized configuration, evaluated the way AWS WAF does
(rules by priority, managed rule actions overridden to Count add their labels and go on,
the first Block ends it). The web ACL is synthesized on its own (it is off by default, so the
shared synthesis of the app does not contain it)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template  # conftest has pointed jsii at Node 24

from infra.waf import BODY_RULES, web_acl
from tests.dists import upload_form, wheel_bytes, wheel_name

README = """# billing-core

See [the guide](../docs/guide.md) and [the changelog](../../CHANGELOG.md).

<p align="center"><img src="https://example.com/logo.png" alt="logo" width="120"></p>
<details><summary>Install</summary>

```sh
pip install billing-core
```
</details>
<script type="text/markdown">embedded by some README generators</script>
"""


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    stack = Stack(App(), "WafUnderTest")
    web_acl(stack, "WebAcl")
    ((acl,),) = [list(Template.from_stack(stack).find_resources("AWS::WAFv2::WebACL").values())]
    return sorted(acl["Properties"]["Rules"], key=lambda rule: rule["Priority"])


def _stand_in_signatures(body: bytes) -> set[str]:
    """The managed body rules a body trips (a stand-in for AWS's signatures)."""
    text = body.decode("latin-1")
    tripped = set()
    if "../" in text:
        tripped.add("GenericLFI_BODY")
    if re.search(r"<\s*(script|img|iframe|svg|details)\b", text, re.IGNORECASE):
        tripped.add("CrossSiteScripting_BODY")
    return tripped


def _matches(statement: dict[str, Any], request: dict[str, Any], labels: set[str]) -> bool:
    if "AndStatement" in statement:
        return all(_matches(s, request, labels) for s in statement["AndStatement"]["Statements"])
    if "OrStatement" in statement:
        return any(_matches(s, request, labels) for s in statement["OrStatement"]["Statements"])
    if "NotStatement" in statement:
        return not _matches(statement["NotStatement"]["Statement"], request, labels)
    if "LabelMatchStatement" in statement:
        return statement["LabelMatchStatement"]["Key"] in labels
    if "ByteMatchStatement" in statement:
        match = statement["ByteMatchStatement"]
        field = "method" if "Method" in match["FieldToMatch"] else "path"
        assert match["PositionalConstraint"] == "EXACTLY"
        return request[field] == match["SearchString"]
    if "RateBasedStatement" in statement:
        return False  # one request is under any rate
    raise AssertionError(f"statement not evaluated by this test: {statement}")


def _evaluate(rules: list[dict[str, Any]], request: dict[str, Any]) -> tuple[str, set[str]]:
    labels: set[str] = set()
    for rule in rules:
        group = rule["Statement"].get("ManagedRuleGroupStatement")
        if group is not None:
            counted = {o["Name"] for o in group.get("RuleActionOverrides", [])}
            for name in _stand_in_signatures(request["body"]) & BODY_RULES[group["Name"]].keys():
                if name not in counted:
                    return f"blocked by {group['Name']}:{name}", labels
                labels.add(BODY_RULES[group["Name"]][name])
            continue
        if _matches(rule["Statement"], request, labels) and "Block" in rule["Action"]:
            return f"blocked by {rule['Name']}", labels
    return "allowed", labels


def _twine_body() -> bytes:
    data = wheel_bytes("billing-core", "1.0")
    filename = wheel_name("billing-core", "1.0")
    fields = upload_form(
        data,
        filename,
        "billing-core",
        "1.0",
        description=README,
        description_content_type="text/markdown",
        summary="Billing <core> helpers",
    )
    request = httpx.Request(
        "POST",
        "https://index.example/legacy/",
        data=fields,
        files={"content": (filename, data, "application/octet-stream")},
    )
    return request.read()


@pytest.mark.parametrize("path", ["/legacy/", "/legacy", "/"])
def test_a_twine_upload_with_a_real_readme_is_not_blocked(
    rules: list[dict[str, Any]], path: str
) -> None:
    body = _twine_body()
    assert _stand_in_signatures(body) == {"GenericLFI_BODY", "CrossSiteScripting_BODY"}
    verdict, labels = _evaluate(rules, {"method": "POST", "path": path, "body": body})
    assert verdict == "allowed"
    assert len(labels) == 2  # the managed rules saw it, and only counted


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/projects/billing-core/yank"), ("PUT", "/legacy/")]
)
def test_the_same_body_elsewhere_is_still_blocked(
    rules: list[dict[str, Any]], method: str, path: str
) -> None:
    verdict, _ = _evaluate(rules, {"method": method, "path": path, "body": _twine_body()})
    assert verdict == "blocked by BodyRulesExceptUploads"


def test_only_body_rules_are_relaxed_and_the_rest_still_blocks(rules: list[dict[str, Any]]) -> None:
    by_name = {rule["Name"]: rule for rule in rules}
    for group, body_rules in BODY_RULES.items():
        statement = by_name[group]["Statement"]["ManagedRuleGroupStatement"]
        counted = {o["Name"] for o in statement["RuleActionOverrides"]}
        assert counted <= {*body_rules, "SizeRestrictions_BODY"}  # headers, URI, query: Block
        assert all(name.endswith("_BODY") for name in counted)
        assert by_name[group]["OverrideAction"] == {"None": {}}
    assert by_name["RateLimitPerIp"]["Action"] == {"Block": {}}
