"""Sanity checks of the planted faults themselves, not the kill matrix.

Every ``faulty_*`` and ``correct_*`` file in ``tests/faults/`` loads through the contract loader; every
``correct_*`` agrees with the NumPy reference on a fixed set of hand-picked cases; every ``faulty_*`` is
observably different from the reference, or breaks the contract, on at least one of them. That proves each
planted bug *can* be seen, so that when the kill matrix runs the real property suite on it, a survivor is a
hole in the suite and not an invisible fault.

The comparison is a plain margin, not a verification claim (the property suite's error bounds make those):
two results differ when ``|a - b| > MARGIN * (|b| + max|b|)`` for some element (``MARGIN`` per dtype below).
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from mlp_crosscheck.backends.contract import ContractError, Implementation, Result
from mlp_crosscheck.properties import kink_conventions
from mlp_crosscheck.reference import activations, network
from mlp_crosscheck.reference.activations import Kinks
from mlp_crosscheck.reference.network import Network

from mlp_crosscheck import backends

FAULT_DIR = Path(__file__).parent / "faults"
FAULTS = sorted(FAULT_DIR.glob("faulty_*.py"))
CORRECT = sorted(FAULT_DIR.glob("correct_*.py"))
FAMILIES = frozenset(
    {
        "forward agreement",
        "gradient agreement",
        "finite differences",
        "collapse",
        "training",
        "conservation",
        "contract checks",
        "kink conventions",
        "underflow",
    }
)

# float64: far above any rounding difference between correct implementations (~1e-14 here), far below the
# smallest planted error (a float32 round trip, ~1e-8; softplus's threshold-20 shortcut, ~1e-9).
# float32: above the ~4e-6 that a different summation order reaches on these cases.
MARGIN = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}


@dataclass(frozen=True)
class Case:
    """A named sequence of calls, each (network, x, y); stateful faults need more than one call."""

    label: str
    calls: tuple[tuple[Network, np.ndarray, np.ndarray], ...]

    def __str__(self) -> str:
        return self.label


def _random_network(widths, names, *, biases=True, dtype=np.float64, seed=0) -> Network:
    rng = np.random.default_rng(seed)
    weights = tuple(rng.standard_normal((m, n)) / np.sqrt(m) for m, n in itertools.pairwise(widths))
    bias_list = tuple(0.5 * rng.standard_normal(n) for n in widths[1:]) if biases else None
    return Network(weights, bias_list, tuple(names)).astype(dtype)


def _random_batch(net: Network, batch: int, seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1000)
    x = rng.standard_normal((batch, net.widths[0])).astype(net.dtype)
    y = rng.standard_normal((batch, net.widths[-1])).astype(net.dtype)
    return x, y


def _random_case(label, widths, names, *, batch, biases=True, dtype=np.float64, seed=0) -> Case:
    net = _random_network(widths, names, biases=biases, dtype=dtype, seed=seed)
    return Case(label, ((net, *_random_batch(net, batch, seed)),))


def _elementwise_case(name: str, values, dtype) -> Case:
    """One layer with W = I and b = 0 on a batch of one, so that the pre-activations are exactly ``values``.

    With one example, no gradient is a sum of several terms, so nothing cancels: any difference is the formula's.
    """
    values = np.asarray(values, dtype=dtype)
    n = len(values)
    net = Network((np.eye(n, dtype=dtype),), (np.zeros(n, dtype=dtype),), (name,))
    x = values[None, :]
    return Case(f"{name} at z = {values.tolist()} ({np.dtype(dtype).name})", ((net, x, np.zeros_like(x)),))


def _kink_case(name: str) -> Case:
    """A ``name`` network whose second layer has a pre-activation exactly 0 for every example (a zero column)."""
    net = _random_network((3, 4, 4, 1), [name] * 3, biases=False, seed=7)
    w2 = net.weights[1].copy()
    w2[:, 0] = 0.0
    net = Network((net.weights[0], w2, net.weights[2]), None, net.activations)
    x, y = _random_batch(net, 6, seed=7)
    return Case(f"{name}, exact-zero pre-activation in layer 2", ((net, x, y),))


def _tiny_gradients_case() -> Case:
    """Weights of ~1e-12, so that every gradient is ~1e-36 or below: tiny, yet normal float64 numbers."""
    net = _random_network((3, 4, 1), ["identity"] * 2, biases=False, seed=13)
    net = Network(tuple(w * 1e-12 for w in net.weights), None, net.activations)
    x, _ = _random_batch(net, 4, seed=13)
    return Case("3-4-1 identity, weights ~1e-12: gradients ~1e-36 (float64)", ((net, x, np.zeros((4, 1))),))


def _close_fit_case() -> Case:
    """Targets within ~1e-4 of the output, as at the end of training: the residuals are far below the outputs."""
    net = _random_network((3, 4, 10, 1), ["tanh"] * 3, seed=9)
    x, _ = _random_batch(net, 4, seed=9)
    out = REFERENCE.forward(net, x)
    y = out + 1e-4 * np.random.default_rng(9).standard_normal(out.shape)
    return Case("3-4-10-1 tanh, targets within 1e-4 of the output", ((net, x, y),))


def _two_calls_case() -> Case:
    """Two calls with the same shapes and the same batch, but different weights: stale state shows on the second."""
    first = _random_network((3, 4, 10, 1), ["tanh"] * 3, seed=11)
    second = _random_network((3, 4, 10, 1), ["tanh"] * 3, seed=12)
    x, y = _random_batch(first, 4, seed=11)
    return Case("two successive calls, same shapes and batch, new weights", ((first, x, y), (second, x, y)))


def _cases() -> list[Case]:
    cases = []
    for name in activations.NAMES:
        for dtype in (np.float64, np.float32):
            label = f"3-4-10-1 {name} with biases, batch 4 ({np.dtype(dtype).name})"
            cases.append(_random_case(label, (3, 4, 10, 1), [name] * 3, batch=4, dtype=dtype, seed=1))
        cases += [
            _elementwise_case(name, [-800, -100, -30, 30, 100, 800], np.float64),
            _elementwise_case(name, [-100, -90, -30, 30, 90, 100], np.float32),
            _elementwise_case(name, [-3e-9, -1e-9, 1e-9, 3e-9], np.float64),
            _elementwise_case(name, [-12, -10, -8, -6], np.float64),
            _elementwise_case(name, [20.5, 21, 25, 30], np.float64),
        ]
    cases += [
        _random_case("4-4-4 tanh/sigmoid, square layers, batch 4 == width", (4, 4, 4), ["tanh", "sigmoid"], batch=4),
        _random_case("3-4-10-1 tanh, batch 1", (3, 4, 10, 1), ["tanh"] * 3, batch=1, seed=2),
        _random_case("3-4-10-1 tanh without biases", (3, 4, 10, 1), ["tanh"] * 3, batch=4, biases=False, seed=3),
        _random_case(
            "3-5-4-6-2 tanh/sigmoid/elu/softplus, depth 4",
            (3, 5, 4, 6, 2),
            ["tanh", "sigmoid", "elu", "softplus"],
            batch=5,
            seed=4,
        ),
        _random_case(
            "depth 6, widths up to 40, batch 40 (the size bugs)",
            (5, 40, 7, 12, 3, 9, 2),
            ["tanh", "relu", "sigmoid", "tanh", "elu", "identity"],
            batch=40,
            seed=5,
        ),
        _kink_case("relu"),
        _kink_case("leaky_relu"),
        _tiny_gradients_case(),
        _close_fit_case(),
        _two_calls_case(),
    ]
    return cases


REFERENCE = backends.builtin("numpy")
CASES = _cases()


def _differs(actual, expected, dtype) -> bool:
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return True
    margin = MARGIN[np.dtype(dtype)]
    scale = float(np.max(np.abs(expected), initial=0.0))
    return not np.allclose(actual, expected, rtol=margin, atol=margin * scale)


def _applies(impl: Implementation, case: Case) -> bool:
    return all(impl.unsupported(net.activations, net.dtype) is None for net, _, _ in case.calls)


def _comparisons(impl: Implementation, net: Network, x: np.ndarray, y: np.ndarray):
    """Yield (what, actual, expected) for the forward output, the loss and every gradient."""
    yield "forward output", impl.forward(net, x), REFERENCE.forward(net, x)
    got = impl.loss_and_gradients(net, x, y)
    # The reference with the implementation's convention at exact kinks (its declared or valid measured one).
    loss, grads = network.loss_and_gradients(net, x, y, Kinks(kink_conventions.overrides(impl)))
    want = Result(loss, grads.weights, grads.biases, grads.x if got.x is not None else None)
    yield "loss", got.loss, want.loss
    for i, (g, w) in enumerate(zip(got.weights, want.weights, strict=True)):
        yield f"dweights[{i}]", g, w
    for i, (g, w) in enumerate(zip(got.biases or (), want.biases or (), strict=True)):
        yield f"dbiases[{i}]", g, w
    if got.x is not None:
        yield "dx", got.x, want.x


def _is_observably_different(impl: Implementation, case: Case) -> bool:
    """Return whether ``impl`` differs from the reference on ``case`` beyond the margin, or breaks the contract."""
    try:
        for net, x, y in case.calls:
            for _, actual, expected in _comparisons(impl, net, x, y):
                if _differs(actual, expected, net.dtype):
                    return True
    except ContractError:
        return True
    return False


def assert_implementation_matches_reference(impl: Implementation, case: Case) -> None:
    """Raise AssertionError naming the quantity and the difference if ``impl`` differs from the reference."""
    for call, (net, x, y) in enumerate(case.calls):
        for what, actual, expected in _comparisons(impl, net, x, y):
            if _differs(actual, expected, net.dtype):
                diff = np.max(np.abs(np.asarray(actual, dtype=np.float64) - np.asarray(expected, dtype=np.float64)))
                raise AssertionError(
                    f"{impl.name} differs from the reference in {what} on call {call + 1} of case {case}: "
                    f"max |diff| = {diff:.3g}, max |reference| = {np.max(np.abs(expected)):.3g}, "
                    f"margin {MARGIN[np.dtype(net.dtype)]:g} relative"
                )


def _docstring_lines(path: Path) -> list[str]:
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=True)
    assert doc, f"{path.name} has no module docstring"
    return doc.splitlines()


def test_there_are_enough_faults_and_correct_alternatives():
    assert len(FAULTS) >= 32, f"only {len(FAULTS)} planted faults in {FAULT_DIR}"
    assert len(CORRECT) >= 5, f"only {len(CORRECT)} correct alternatives in {FAULT_DIR}"


@pytest.mark.parametrize("path", FAULTS + CORRECT, ids=lambda p: p.stem)
def test_every_file_loads_through_the_contract_and_is_named_for_its_file(path):
    impl = backends.load(str(path))
    assert impl.name == path.stem
    assert impl.has_input_gradient, f"{path.name} should define loss_and_input_gradients"


@pytest.mark.parametrize("path", FAULTS, ids=lambda p: p.stem)
def test_every_fault_states_its_bug_and_the_family_that_should_catch_it(path):
    lines = _docstring_lines(path)
    assert lines[0].strip(), f"{path.name}: the docstring's first line must state the bug"
    caught_by = lines[1] if len(lines) > 1 else ""
    assert caught_by.startswith("Caught by: "), f"{path.name}: the second line must be 'Caught by: <family>'"
    family = caught_by.removeprefix("Caught by: ")
    assert family in FAMILIES, f"{path.name}: unknown property family {family!r}; the families: {sorted(FAMILIES)}"
    n_bugs = path.read_text().count("# BUG:")
    assert n_bugs == 1, f"{path.name} marks {n_bugs} lines with '# BUG:'; a planted fault has exactly one"


@pytest.mark.parametrize("path", FAULTS + CORRECT, ids=lambda p: p.stem)
def test_every_file_is_listed_in_the_faults_readme(path):
    assert f"`{path.name}`" in (FAULT_DIR / "README.md").read_text()


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_alternative_agrees_with_the_reference_on_every_case(path):
    impl = backends.load(str(path))
    for case in CASES:
        if _applies(impl, case):
            assert_implementation_matches_reference(impl, case)


@pytest.mark.parametrize("path", FAULTS, ids=lambda p: p.stem)
def test_planted_fault_is_observable_on_some_case(path):
    impl = backends.load(str(path))
    assert any(_is_observably_different(impl, case) for case in CASES if _applies(impl, case)), (
        f"{path.name} agrees with the reference on every hand-picked case: its bug is never observable here"
    )


def test_the_reference_itself_is_not_observably_different():
    # The comparison must not fire on its own: this is what makes a fault's difference mean something.
    assert not any(_is_observably_different(REFERENCE, case) for case in CASES)
