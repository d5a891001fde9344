"""The synthesized template's tests: the ``synth`` fixture lives in tests/synth.py (the IAM tier
reads the same synthesis)."""

from tests.synth import ACCOUNT, BIN, CDK, REGION, ROOT, STACK, Synth, cdk_env, run_synth

__all__ = ["ACCOUNT", "BIN", "CDK", "REGION", "ROOT", "STACK", "Synth", "cdk_env", "run_synth"]
