"""PyTorch backend: the network in torch, gradients from torch.autograd, activations from torch.nn.functional.

Invariants:
- Gradients come from autograd only; nothing here may re-derive a derivative by hand (that would check nothing).
- Activations are torch's own, configured to mean exactly the reference's function: ``F.gelu`` with
  ``approximate="none"`` (the exact erf form), ``F.leaky_relu`` with slope 0.01, ``F.elu`` with alpha 1, and
  ``F.softplus`` with ``threshold=40``: torch's default threshold 20 returns ``z`` for ``z > 20``, which is off
  by ``log1p(e^-20) ~ 2e-9`` -- ten million float64 ulps. Above 40 the omitted term ``e^-40 ~ 4e-18`` is below
  half an ulp of ``z`` in float64 and float32, so the cut-off is exact to rounding.
- Matmuls in full precision: TF32 is switched off for CUDA (it is off by default; we make sure).
- Torch is imported when this module is; ``backends.builtin("torch")`` imports it only when asked for.

Besides the contract's functions (``forward``, ``loss_and_gradients``, ``loss_and_input_gradients``), the
module holds everything else the suite does with torch: ``Batched`` (a stack of networks in one autograd
call, for ``mlp-crosscheck sweep``), ``set_threads``, ``activation_and_derivative``, the naive and gradcheck
baselines that ``mlp-crosscheck bench`` measures against, and torch's recorded behaviours as data.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from mlp_crosscheck.backends import recorded
from mlp_crosscheck.backends.contract import default_device, functions_of, on_device_of
from mlp_crosscheck.reference.batched import Gradients

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

NAME = "torch"

ACTIVATIONS = {
    "identity": lambda z: z,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, negative_slope=0.01),
    "elu": lambda z: F.elu(z, alpha=1.0),
    "softplus": lambda z: F.softplus(z, beta=1.0, threshold=40.0),
    "gelu": lambda z: F.gelu(z, approximate="none"),
    "silu": F.silu,
}
DTYPES = ("float32", "float64")

# Recorded behaviours: what torch does where the maths leaves a choice, the row of backends/recorded.json for the
# installed version (or the nearest recorded one), re-measured on every run by the claims of
# properties/test_kink_conventions.py, test_underflow.py, test_recorded_behaviours.py and test_activation_accuracy.py.
# relu'(0) and leaky_relu'(0): torch's backward tests z > 0, so the left branch (0, the slope); 0.5 * tiny stays
# the subnormal tiny / 2 on the CPU (gradual underflow), and subnormal inputs are kept.
RECORDED_ROW, RECORDED_WITH, KINK_DERIVATIVES, FLUSHES_SUBNORMALS, SUBNORMAL_INPUTS = recorded.declarations("torch")


class TorchNetwork:
    """The contract's functions, computed by torch on one device (``"cpu"`` or ``"cuda"``)."""

    def __init__(self, device: str = "cpu") -> None:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA device")
        self.device = torch.device(device)

    def _tensor(self, a: np.ndarray, grad: bool = False) -> torch.Tensor:
        # torch.tensor copies, so the caller's array is never aliased or mutated.
        return torch.tensor(np.asarray(a), device=self.device, requires_grad=grad)

    def _numpy(self, t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    def _forward(self, weights, biases, activations, x):
        a = x
        for layer, (w, name) in enumerate(zip(weights, activations, strict=True)):
            z = a @ w if biases is None else a @ w + biases[layer]
            a = ACTIVATIONS[name](z)
        return a

    def forward(self, weights, biases, activations, x) -> np.ndarray:
        with torch.no_grad():
            ws = [self._tensor(w) for w in weights]
            bs = None if biases is None else [self._tensor(b) for b in biases]
            return self._numpy(self._forward(ws, bs, activations, self._tensor(x)))

    def loss_and_input_gradients(self, weights, biases, activations, x, y):
        """Return ``(loss, dweights, dbiases, dx)``, every gradient from one autograd pass."""
        ws = [self._tensor(w, grad=True) for w in weights]
        bs = None if biases is None else [self._tensor(b, grad=True) for b in biases]
        xt = self._tensor(x, grad=True)
        r = self._forward(ws, bs, activations, xt) - self._tensor(y)
        loss = 0.5 * (r * r).sum()
        grads = torch.autograd.grad(loss, [*ws, *(bs or []), xt])
        dws = [self._numpy(g) for g in grads[: len(ws)]]
        dbs = None if bs is None else [self._numpy(g) for g in grads[len(ws) : -1]]
        return loss.item(), dws, dbs, self._numpy(grads[-1])


# The module-level contract functions compute on $MLP_CROSSCHECK_DEVICE (default cpu); on_device on others.
_default = TorchNetwork(default_device())
forward, loss_and_gradients, loss_and_input_gradients = functions_of(_default)
on_device = on_device_of(__name__, TorchNetwork)


def set_threads(threads: int) -> None:
    """Run torch's CPU kernels on ``threads`` intra-op threads (process-wide)."""
    torch.set_num_threads(threads)


class Batched:
    """A stack of networks (``reference.batched.NetworkStack``) in one autograd call, on the default device.

    Every network's forward pass is ``TorchNetwork._forward`` over a leading network axis; autograd
    differentiates the sum of the networks' losses, and each network's gradient is exact: no network's loss
    depends on another network's parameters, so ``d(sum_k L_k)/dW_k = dL_k/dW_k``.
    """

    def __init__(self, chunk: int) -> None:
        self.network = _default

    def evaluate(self, stack, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, Gradients]:
        """Return each network's loss ``(N,)`` and its gradients, stacked (``reference.batched.Gradients``)."""
        device = self.network.device
        tensor = lambda a: torch.from_numpy(a).to(device).requires_grad_()
        ws = [tensor(w) for w in stack.weights]
        bs = None if stack.biases is None else [tensor(b) for b in stack.biases]
        xt = tensor(x)
        # b[:, None, :]: each network's bias broadcast over its own batch rows
        out = self.network._forward(ws, None if bs is None else [b[:, None, :] for b in bs], stack.activations, xt)
        r = out - torch.from_numpy(y).to(device)
        losses = 0.5 * (r * r).sum(dim=(1, 2))  # each network's 0.5 sum (A_L - y)^2
        grads = [g.detach().cpu().numpy() for g in torch.autograd.grad(losses.sum(), [*ws, *(bs or []), xt])]
        depth = len(ws)
        biases = None if bs is None else tuple(grads[depth : 2 * depth])
        return losses.detach().cpu().numpy(), Gradients(tuple(grads[:depth]), biases, grads[-1])


def activation_and_derivative(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``sigma(z)`` and ``sigma'(z)`` as torch computes them: its own function and its own autograd."""
    t = torch.tensor(z, requires_grad=True)
    v = ACTIVATIONS[name](t)
    (d,) = torch.autograd.grad(v.sum(), t)
    return v.detach().numpy(), d.numpy()


# -- baselines for ``mlp-crosscheck bench``: torch used the way a test without this suite uses it ----------------


def naive_tanh_weight_gradients(x: np.ndarray, weights, y: np.ndarray) -> list[np.ndarray]:
    """Return dL/dW of a bias-free tanh network, written as a tutorial writes it."""
    wt = [torch.tensor(w, requires_grad=True) for w in weights]
    a = torch.tensor(x)
    for w in wt:
        a = torch.tanh(a @ w)
    loss = 0.5 * ((a - torch.tensor(y)) ** 2).sum()
    return [g.numpy() for g in torch.autograd.grad(loss, wt)]


def framework_gradient_check(x: np.ndarray, weights) -> None:
    """Run ``torch.autograd.gradcheck`` on the loss ``0.5 sum(A_L^2)`` of a bias-free tanh network."""

    xt = torch.tensor(x)

    def loss(*ws):
        a = xt
        for w in ws:
            a = torch.tanh(a @ w)
        return 0.5 * (a * a).sum()

    torch.autograd.gradcheck(loss, [torch.tensor(w, requires_grad=True) for w in weights])
