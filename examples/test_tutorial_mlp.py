"""Every mlp-crosscheck claim that applies to tutorial_mlp.py, as tests of this project's own suite."""

from mlp_crosscheck import crosscheck_tests

globals().update(crosscheck_tests("tutorial_mlp.py"))
