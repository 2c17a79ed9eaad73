"""A pytest plugin that registers the Hypothesis profile ``mutation``: the property suite, fast and repeatable.

Used by the mutation-testing configuration (``scripts/mutmut.cfg``; ``docs/mutation.md``):
``-p mlp_crosscheck.properties.mutation_profile --hypothesis-profile=mutation``. Mutation testing reruns the
suite once per mutant, so each run must be cheap, and a mutant must be killed or not for the same reason every
time:

- derandomized, so every run draws the same examples (a surviving mutant survives on every rerun);
- 10 examples per test instead of the ``ci`` profile's 60: a mutant of the reference changes a number on
  nearly every example, so the first few decide; the survivors are then examined one by one;
- no shrinking: mutmut only needs "some test failed", and shrinking is most of a failing test's time;
- the same health-check suppressions as the claims' profiles (``profiles.py``) (``deadline=None``, as there).

Added to the claims' own profiles (``profiles.PROFILES``) and registered with Hypothesis at import, which
``-p`` does while parsing the command line, before the plugins read ``--hypothesis-profile``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from mlp_crosscheck.properties import profiles

profiles.PROFILES["mutation"] = settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors, HealthCheck.function_scoped_fixture],
)
settings.register_profile("mutation", profiles.PROFILES["mutation"])
