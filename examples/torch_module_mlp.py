"""A PyTorch MLP written as an ``nn.Module``, checked through the same contract as any NumPy code.

The contract hands over NumPy arrays with ``weights[l]`` of shape ``(n_in, n_out)``; ``nn.Linear`` keeps
``(n_out, n_in)``, so the weights go in transposed and their gradients come out transposed back. The gradients
are torch's own autograd, the activations torch's own functions.
"""

import numpy as np
import torch
from torch import nn

ACTIVATIONS = ("identity", "tanh", "sigmoid", "relu", "softplus")

FUNCTIONS = {
    "identity": lambda z: z,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    # threshold=40: torch's default (20) returns z itself above 20, off by up to e^-20 relative in float64.
    "softplus": lambda z: nn.functional.softplus(z, threshold=40),
}


class MLP(nn.Module):
    def __init__(self, weights, biases, activations):
        super().__init__()
        dtype = torch.float64 if weights[0].dtype == np.float64 else torch.float32
        self.layers = nn.ModuleList()
        for i, w in enumerate(weights):
            layer = nn.Linear(w.shape[0], w.shape[1], bias=biases is not None, dtype=dtype)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(w.T.copy()))
                if biases is not None:
                    layer.bias.copy_(torch.from_numpy(biases[i]))
            self.layers.append(layer)
        self.activations = activations

    def forward(self, x):
        for layer, name in zip(self.layers, self.activations, strict=True):
            x = FUNCTIONS[name](layer(x))
        return x


def forward(weights, biases, activations, x):
    with torch.no_grad():
        return MLP(weights, biases, activations)(torch.from_numpy(x)).numpy()


def loss_and_input_gradients(weights, biases, activations, x, y):
    model = MLP(weights, biases, activations)
    inputs = torch.from_numpy(x).requires_grad_(True)
    loss = 0.5 * ((model(inputs) - torch.from_numpy(y)) ** 2).sum()
    loss.backward()
    dweights = [layer.weight.grad.T.numpy().copy() for layer in model.layers]
    dbiases = [layer.bias.grad.numpy().copy() for layer in model.layers] if biases is not None else None
    return loss.item(), dweights, dbiases, inputs.grad.numpy()


def loss_and_gradients(weights, biases, activations, x, y):
    return loss_and_input_gradients(weights, biases, activations, x, y)[:3]
