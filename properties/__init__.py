"""Hypothesis properties, strategies, tolerances and assert helpers of mlp-crosscheck."""
