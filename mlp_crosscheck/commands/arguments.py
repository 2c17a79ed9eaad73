"""The commands' shared argument vocabulary: one parser and one error message for each kind of value.

Each function is an argparse ``type=``: it returns the parsed value or raises ``ArgumentTypeError`` with a
message that names what was wrong and what is allowed, so ``sweep``, ``bench``, ``reproduce`` and ``check``
reject a bad backend list, architecture, activation or number the same way.
"""

from __future__ import annotations

import argparse
import math

from mlp_crosscheck import backends
from mlp_crosscheck.reference import activations as vocabulary

DTYPES = ("float64", "float32")


def positive_int(text: str) -> int:
    """``"100_000"`` -> 100000; anything below 1 is refused."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """``"0"`` -> 0, ``"4"`` -> 4: for a count where 0 means something (none, or "leave it to the framework")."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def backend_names(text: str) -> list[str]:
    """``"numpy,torch"`` -> ``["numpy", "torch"]``: built-in backends, deduplicated in order, at least one."""
    names = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in backends.BUILTINS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown backend {', '.join(map(repr, unknown))}; the built-in backends are {', '.join(backends.BUILTINS)}"
        )
    if not names:
        raise argparse.ArgumentTypeError(f"name at least one of {', '.join(backends.BUILTINS)}")
    return names


def optional_backend_names(text: str) -> list[str]:
    """As ``backend_names``, but ``""`` means none (for a command whose subject is something else)."""
    return backend_names(text) if text.strip() else []


def architecture(text: str) -> tuple[int, ...]:
    """``"3,4,10,1"`` -> the widths ``(n_0, ..., n_L)``: at least two, each positive."""
    try:
        widths = tuple(int(n) for n in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must be comma-separated integers, got {text!r}") from None
    if len(widths) < 2 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"need at least two positive widths, got {text!r}")
    return widths


def activation_names(text: str) -> tuple[str, ...]:
    """``"tanh"`` or ``"relu,tanh"``: names from the vocabulary (one for every layer, or one per layer)."""
    names = tuple(n.strip() for n in text.split(","))
    unknown = [n for n in names if n not in vocabulary.NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown activation {', '.join(map(repr, unknown))}; the vocabulary is {', '.join(vocabulary.NAMES)}"
        )
    return names
