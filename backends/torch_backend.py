"""PyTorch backend: the network in torch, gradients from torch.autograd, activations from torch.nn.functional.

Design constraints a reader must not break:
- Gradients come from autograd only; nothing here may re-derive a derivative by hand (that would check nothing).
- Activations are torch's own, configured to mean exactly the reference's function: ``F.gelu`` with
  ``approximate="none"`` (the exact erf form), ``F.leaky_relu`` with slope 0.01, ``F.elu`` with alpha 1, and
  ``F.softplus`` with ``threshold=40``: torch's default threshold 20 returns ``z`` for ``z > 20``, which is off
  by ``log1p(e^-20) ~ 2e-9`` -- ten million float64 ulps. Above 40 the omitted term ``e^-40 ~ 4e-18`` is below
  half an ulp of ``z`` in float64 and float32, so the cut-off is exact to rounding.
- Matmuls in full precision: TF32 is switched off for CUDA (it is off by default; we make sure).
- Torch is imported when this module is, and this module only through ``backends.load``.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from mlp_crosscheck.backends.contract import as_module

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

    def loss_and_gradients(self, weights, biases, activations, x, y):
        loss, dws, dbs, _ = self.loss_and_input_gradients(weights, biases, activations, x, y)
        return loss, dws, dbs


def on_device(device: str) -> SimpleNamespace:
    """Return this backend's contract functions computing on ``device``, as a module-like namespace."""
    return as_module(NAME, ACTIVATIONS, DTYPES, TorchNetwork(device))


# The module-level contract functions run on MLP_CROSSCHECK_DEVICE (default cpu); see on_device for others.
_default = TorchNetwork(os.environ.get("MLP_CROSSCHECK_DEVICE", "cpu"))
forward = _default.forward
loss_and_gradients = _default.loss_and_gradients
loss_and_input_gradients = _default.loss_and_input_gradients
