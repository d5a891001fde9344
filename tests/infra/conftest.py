"""The synthesized template's tests: the ``synth`` fixture lives in tests/synth.py (the IAM tier
reads the same synthesis)."""

from tests.synth import BIN, CDK, ROOT, Synth, cdk_env

__all__ = ["BIN", "CDK", "ROOT", "Synth", "cdk_env"]
