"""JAX backend: the network in jax.numpy, gradients from jax.grad, activations from jax.nn.

Invariants:
- Gradients come from ``jax.value_and_grad`` only; nothing here re-derives a derivative by hand.
- Activations are jax.nn's own, configured to mean the reference's function: ``gelu(approximate=False)``
  (jax's default is the tanh approximation), ``leaky_relu(negative_slope=0.01)``, ``elu(alpha=1)``.
- float64: JAX truncates float64 to float32 unless ``jax_enable_x64`` is on. We switch it on only inside our
  own calls, with JAX's x64 context manager (``_x64``), so that importing this backend changes nothing for
  other JAX code in the process. (The flag is part of JAX's compile-cache key, so this costs no recompiles.)
- Matmuls at ``Precision.HIGHEST``: on GPUs and TPUs the default may use TF32 or bfloat16 passes.
- The activations are data, not part of the compiled program: each layer's activation is an index that
  ``jax.lax.switch`` uses to pick the jax.nn function at run time, so one program serves every choice of
  activations (the chosen branch is the same jax.nn call, differentiated by the same autodiff).
- Shapes are bucketed so that JAX compiles once per (bias or not, dtype, width bucket, batch bucket), not
  once per architecture, depth and batch size: every width is zero-padded up to the bucket of the widest
  layer, ``bucket(max n_l)`` (16, 128, or the next power of two above), the batch up to ``bucket(batch)``, and
  the depth up to ``depth_bucket`` (8) with exact identity layers (per-layer buckets would compile
  thousands of programs for the networks the properties draw, each costing about a second). Padding is
  exact: padded units have zero incoming and outgoing weights and zero bias, so they add exact zeros to
  every real sum; padded rows and output columns are masked out of the loss (``(out - y) * mask``, mask 1
  or 0), so their residual and every gradient flowing from them is exactly 0.
  Only the summation order may change, which the error bounds already allow. (Overflow to inf inside a real
  unit would turn a padded ``inf * 0`` into NaN; the properties keep values finite.)
- ``COMPILATIONS`` counts traces (the Python body runs only when JAX traces), so tests can bound recompiles.

Besides the contract's functions, the module holds everything else the suite does with JAX: ``Batched``
(``jax.jit(jax.vmap(jax.value_and_grad(...)))`` over a stack of networks, for ``mlp-crosscheck sweep``),
``activation_and_derivative``, the naive and ``check_grads`` baselines of ``mlp-crosscheck bench``, and JAX's
recorded behaviours as data. (Its thread setting is an environment variable read when jax is imported:
``backends.BUILTINS`` carries it.)
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from mlp_crosscheck.backends import recorded
from mlp_crosscheck.backends.contract import default_device, functions_of, on_device_of
from mlp_crosscheck.reference.batched import Gradients

NAME = "jax"


# JAX's float64 switch for the calls inside it, taken once from where the installed release has it:
# ``jax.enable_x64`` from 0.8, ``jax.experimental.enable_x64`` before (removed in 0.10), so that every release
# pyproject admits works (``docs/versions.md``).
if hasattr(jax, "enable_x64"):
    _enable_x64 = jax.enable_x64
else:
    from jax.experimental import enable_x64 as _enable_x64  # type: ignore[attr-defined,no-redef]


def _x64():
    """The context in which JAX computes in float64 (the process's setting is restored on leaving it)."""
    return _enable_x64(True)


ACTIVATIONS: dict[str, Callable] = {
    "identity": lambda z: z,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "leaky_relu": functools.partial(jax.nn.leaky_relu, negative_slope=0.01),
    "elu": functools.partial(jax.nn.elu, alpha=1.0),
    "softplus": jax.nn.softplus,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "silu": jax.nn.silu,
}
DTYPES = ("float32", "float64")

# Recorded behaviours: what jax does where the maths leaves a choice, the row of backends/recorded.json for the
# installed version (or the nearest recorded one), re-measured on every run by the claims of
# properties/test_kink_conventions.py, test_underflow.py, test_recorded_behaviours.py and test_activation_accuracy.py.
# relu'(0) = 0, but leaky_relu'(0) = 1: jax.nn.leaky_relu is jnp.where(x >= 0, x, slope * x). XLA on the CPU
# flushes subnormal results to zero (0.5 * tiny computes to 0) and reads subnormal inputs as zero.
RECORDED_ROW, RECORDED_WITH, KINK_DERIVATIVES, FLUSHES_SUBNORMALS, SUBNORMAL_INPUTS = recorded.declarations("jax")

# (activations, biased, widths, batch, dtype) -> number of times JAX traced that signature.
COMPILATIONS: Counter = Counter()
# (activations, biased, dtype, stacked batch shape) -> number of times ``Batched`` was traced.
BATCHED_COMPILATIONS: Counter = Counter()


_BRANCHES = tuple(ACTIVATIONS.values())
_INDEX = {name: i for i, name in enumerate(ACTIVATIONS)}


def _activate(activation, z):
    """Apply ``activation``: a name (fixed when traced) or an index into ``ACTIVATIONS`` (chosen at run time)."""
    if isinstance(activation, str):
        return ACTIVATIONS[activation](z)
    return jax.lax.switch(activation, _BRANCHES, z)


def _layer(a, w, b, activation):
    """Return ``sigma(a W + b)``: one layer, for the per-layer loop and the scanned stack alike."""
    z = jnp.matmul(a, w, precision=jax.lax.Precision.HIGHEST)
    if b is not None:
        z = z + b
    return _activate(activation, z)


def _forward(weights, biases, activations, x):
    a = x
    for layer, w in enumerate(weights):
        a = _layer(a, w, None if biases is None else biases[layer], activations[layer])
    return a


def _half_squared_error(out, y, mask):
    r = (out - y) * mask  # mask: 1 on real entries, 0 on padding
    return 0.5 * jnp.sum(r * r)


def _loss(weights, biases, x, y, mask, activations):
    return _half_squared_error(_forward(weights, biases, activations, x), y, mask)


def _note_trace(kind, biases, weights, x):
    widths = (x.shape[1], *(weights.shape[2],) * weights.shape[0])
    COMPILATIONS[(kind, biases is not None, widths, x.shape[0], str(x.dtype))] += 1


def _scanned_forward(weights, biases, activations, x):
    """Return the forward pass over stacked layers: one layer traced once and scanned, not traced per layer.

    Tracing and lowering, which JAX repeats in every process even when it loads the compiled program from its
    cache, cost in proportion to the traced layers: each holds a ``jax.lax.switch`` over every activation.
    """

    def layer(a, params):
        return _layer(a, *params), None

    out, _ = jax.lax.scan(layer, x, (weights, biases, activations))
    return out


# The weights and biases arrive stacked, one (depth, width, width) and one (depth, width) array: one transfer
# and one argument each instead of one per layer, which made the transfers most of a small call's time.
@jax.jit
def _jit_forward(weights, biases, x, activations):
    _note_trace("forward", biases, weights, x)
    return _scanned_forward(weights, biases, activations, x)


def _stacked_loss(weights, biases, x, y, mask, activations):
    return _half_squared_error(_scanned_forward(weights, biases, activations, x), y, mask)


@jax.jit
def _jit_loss_and_grads(weights, biases, x, y, mask, activations):
    _note_trace("loss_and_grads", biases, weights, x)
    # Differentiate with respect to weights, biases and x in one reverse pass.
    return jax.value_and_grad(_stacked_loss, argnums=(0, 1, 2))(weights, biases, x, y, mask, activations)


def depth_bucket(depth: int) -> int:
    """Return the padded depth for ``depth`` layers: 8 (the deepest the properties draw), else a power of two."""
    return max(8, 1 << (depth - 1).bit_length())


def bucket(n: int) -> int:
    """Return the padded size for a dimension of size ``n``: 16, else 128, else the next power of two above.

    Two buckets cover the suite's small (<= 16) and large (<= 128) draws: padding a width of 17 to 128 costs
    microseconds of matmul on a CPU, a compile costs seconds.
    """
    return 16 if n <= 16 else max(128, 1 << (n - 1).bit_length())


def _pad(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=a.dtype)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


class JaxNetwork:
    """The contract's functions, computed by JAX on one device (``"cpu"`` or ``"gpu"``/``"cuda"``)."""

    def __init__(self, device: str = "cpu") -> None:
        platform = "gpu" if device.startswith("cuda") else device
        try:
            self.device = jax.devices(platform)[0]
        except RuntimeError as exc:
            raise RuntimeError(f"device {device!r} asked for, but jax {jax.__version__} has none: {exc}") from None

    def _padded(self, weights, biases, activations, x, *extra):
        """Return the padded, stacked weights, biases, activation indices and data, moved to the device at once.

        Widths and batch are zero-padded to their buckets, the depth to ``depth_bucket`` with identity layers
        (``W = I``, ``b = 0``, identity activation) after the last: each copies its input exactly, as
        ``a @ I`` has one nonzero product per sum, ``a * 1``; backwards ``delta @ I^T`` is as exact.
        """
        width = bucket(max(np.shape(x)[1], *(np.shape(w)[1] for w in weights)))
        depth = depth_bucket(len(weights))
        dtype = np.asarray(x).dtype
        batch = bucket(np.shape(x)[0])
        real = len(weights)
        ws = np.zeros((depth, width, width), dtype=dtype)
        for layer, w in enumerate(weights):
            ws[layer][_within(w)] = w
        ws[real:] = np.eye(width, dtype=dtype)
        bs = None
        if biases is not None:
            bs = np.zeros((depth, width), dtype=dtype)
            for layer, b in enumerate(biases):
                bs[layer][_within(b)] = b
        indices = np.array([_INDEX[name] for name in activations] + [_INDEX["identity"]] * (depth - real), np.int32)
        data = tuple(_pad(np.asarray(a), (batch, width)) for a in (x, *extra))
        return jax.device_put((ws, bs, indices, data), self.device)

    def forward(self, weights, biases, activations, x) -> np.ndarray:
        with _x64():
            ws, bs, indices, (xj,) = self._padded(weights, biases, activations, x)
            out = np.asarray(_jit_forward(ws, bs, xj, indices))
            return out[: np.shape(x)[0], : np.shape(weights[-1])[1]]

    def loss_and_input_gradients(self, weights, biases, activations, x, y):
        """Return ``(loss, dweights, dbiases, dx)``, every gradient from one reverse pass."""
        with _x64():
            mask = np.ones(np.shape(y), dtype=np.asarray(y).dtype)
            ws, bs, indices, (xj, yj, mj) = self._padded(weights, biases, activations, x, y, mask)
            loss, (dws, dbs, dx) = _jit_loss_and_grads(ws, bs, xj, yj, mj, indices)
            # one transfer per stack; the identity layers padded after the real ones are dropped
            dw_stack = np.asarray(dws)
            dws = [dw_stack[layer][_within(w)] for layer, w in enumerate(weights)]
            if biases is not None:
                db_stack = np.asarray(dbs)
                dbs = [db_stack[layer][_within(b)] for layer, b in enumerate(biases)]
            return float(loss), dws, dbs, np.asarray(dx)[_within(x)]


def _within(a) -> tuple[slice, ...]:
    """Return the index of ``a``'s own block in its zero-padded copy (the leading corner)."""
    return tuple(slice(0, n) for n in np.shape(a))


# The module-level contract functions compute on $MLP_CROSSCHECK_DEVICE (default cpu); on_device on others.
_default = JaxNetwork(default_device())
forward, loss_and_gradients, loss_and_input_gradients = functions_of(_default)
on_device = on_device_of(__name__, JaxNetwork)


class Batched:
    """``jax.jit(jax.vmap(jax.value_and_grad(_loss)))`` over a stack of networks, in chunks of a fixed size.

    JAX compiles once per (activations, biases, dtype) and chunk shape: a shorter stack is padded with zero
    networks up to ``chunk`` (finite, and their results dropped).
    """

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.compiled: dict = {}

    def _function(self, activations: tuple[str, ...]):
        if activations not in self.compiled:

            def per_network(weights, biases, x, y, mask):
                # Runs only while JAX traces: counts compilations.
                BATCHED_COMPILATIONS[(activations, biases is not None, str(x.dtype), (self.chunk, *x.shape))] += 1
                return jax.value_and_grad(_loss, argnums=(0, 1, 2))(weights, biases, x, y, mask, activations)

            # vmap over the network axis of weights, biases, x and y; one mask of ones is shared
            self.compiled[activations] = jax.jit(jax.vmap(per_network, in_axes=(0, 0, 0, 0, None)))
        return self.compiled[activations]

    def evaluate(self, stack, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Gradients]:
        """Return each network's loss ``(N,)`` and its gradients, stacked (``reference.batched.Gradients``)."""
        n = stack.count
        pad = lambda a: a if n == self.chunk else _pad(a, (self.chunk, *a.shape[1:]))
        with _x64():
            put = lambda arrays: tuple(jax.device_put(pad(a), _default.device) for a in arrays)
            ws = put(stack.weights)
            bs = None if stack.biases is None else put(stack.biases)
            xj, yj = put((x, y))
            mask = np.ones(y.shape[1:], dtype=y.dtype)  # every entry real: the loss is the plain L2 loss
            losses, (dws, dbs, dx) = self._function(stack.activations)(ws, bs, xj, yj, mask)
            crop = lambda a: np.asarray(a)[:n]
            biases = None if dbs is None else tuple(crop(g) for g in dbs)
            return crop(losses), Gradients(tuple(crop(g) for g in dws), biases, crop(dx))


def activation_and_derivative(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``sigma(z)`` and ``sigma'(z)`` as JAX computes them: jax.nn's function and jax.grad."""
    with _x64():
        f = ACTIVATIONS[name]
        return np.asarray(f(z)), np.asarray(jax.vmap(jax.grad(f))(z))


# -- baselines for ``mlp-crosscheck bench``: JAX used the way a test without this suite uses it -------------------


def naive_tanh_weight_gradients(x: np.ndarray, weights, y: np.ndarray) -> list[np.ndarray]:
    """Return dL/dW of a bias-free tanh network under a fresh ``jax.jit`` (no cache hit: a test that jits inside)."""

    def loss(ws):
        a = jnp.asarray(x)
        for w in ws:
            a = jnp.tanh(a @ w)
        return 0.5 * jnp.sum((a - y) ** 2)

    with _x64():
        return [np.asarray(g) for g in jax.jit(jax.grad(loss))(list(weights))]


def framework_gradient_check(x: np.ndarray, weights) -> None:
    """Run ``jax.test_util.check_grads`` (order 1, reverse mode) on ``0.5 sum(A_L^2)`` of a bias-free tanh network."""
    from jax.test_util import check_grads

    def loss(ws):
        a = jnp.asarray(x)
        for w in ws:
            a = jnp.tanh(a @ w)
        return 0.5 * jnp.sum(a * a)

    with _x64():
        check_grads(loss, ([jnp.asarray(w) for w in weights],), order=1, modes=("rev",))
