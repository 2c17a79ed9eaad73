#!/usr/bin/env bash
# Mutation testing (docs/mutation.md): mutmut on a staging tree with the installed layout.
#
#   scripts/mutation.sh run --max-children 1     # the whole run (about 40 minutes on one core)
#   scripts/mutation.sh results                  # any mutmut command, run in the staging tree
#
# Why a staging tree: the repository keeps reference/, backends/ and properties/ at its top level and the
# install maps them to mlp_crosscheck.reference, ... . mutmut names a mutant after its file's path
# ("reference.network.x_forward__mutmut_3") but records the module the tests imported
# ("mlp_crosscheck.reference.network"), and stops when the two never match. In build/mutation the files sit
# where their import names say (mlp_crosscheck/reference/network.py), so they match. The copies keep their
# modification times, so an unchanged file is not mutated again on the next call; mutmut's own cache lives in
# build/mutation/mutants (delete it after changing the tests).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
stage="$root/build/mutation"
mkdir -p "$stage/mlp_crosscheck"
cp -a "$root"/mlp_crosscheck/. "$stage/mlp_crosscheck/"
for d in reference backends properties; do
    mkdir -p "$stage/mlp_crosscheck/$d"
    cp -a "$root/$d/." "$stage/mlp_crosscheck/$d/"
done
mkdir -p "$stage/tests"
cp -a "$root/tests/." "$stage/tests/"
cp -a "$root/conftest.py" "$root/pyproject.toml" "$stage/"
cp -a "$root/scripts/mutmut.cfg" "$stage/setup.cfg"
find "$stage" -name __pycache__ -prune -exec rm -rf {} +
cd "$stage"
exec mutmut "$@"
