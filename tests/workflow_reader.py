"""Read a GitHub workflow's ``run:`` steps without a YAML library (PyYAML is not a dependency): shared by the
tests of the gate kit (``test_workflow_kit``) and of this repository's own CI jobs (``test_ci_jobs``)."""

from __future__ import annotations

import re


def run_scalars(text: str) -> list[str]:
    """Return the value of every ``run:`` key of a workflow, without a YAML library.

    Handles what workflows use: ``run: command`` on one line, and the block scalars ``run: |`` (lines kept) and
    ``run: >`` (lines folded into one, as YAML folds lines of equal indentation), with ``-`` (no final line
    break) or without.
    """
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(?:- )?run:\s*(.*?)\s*$", line)
        if match is None:
            continue
        indent, value = len(match.group(1)), match.group(2)
        if not value.startswith(("|", ">")):
            found.append(value)
            continue
        block = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following.strip())
        while block and not block[-1]:
            block.pop()
        text = ("\n" if value.startswith("|") else " ").join(block)
        found.append(text if value.endswith("-") else text + "\n")  # "-" strips the final line break
    return found
