"""A NumPy MLP written the way tutorials write it: a class with forward and backward, textbook formulas.

It follows the mlp-crosscheck contract through the two module-level functions at the bottom. Its formulas
are the textbook ones, and correct: ``1 / (1 + exp(-z))`` and ``1 / cosh(z)**2`` overflow in an intermediate
step for large |z| (NumPy warns "overflow encountered in exp") and still return the right number, which is
what the suite judges.
"""

import numpy as np

ACTIVATIONS = ("identity", "tanh", "sigmoid", "relu")  # what this file implements; the other claims are skipped


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


FUNCTIONS = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "tanh": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
    "sigmoid": (sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z))),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
}


class MLP:
    def __init__(self, weights, biases, activations):
        self.weights = weights
        self.biases = biases
        self.activations = activations

    def forward(self, x):
        self.inputs, self.zs = [], []
        a = x
        for i, (w, name) in enumerate(zip(self.weights, self.activations, strict=True)):
            self.inputs.append(a)
            z = a @ w
            if self.biases is not None:
                z = z + self.biases[i]
            self.zs.append(z)
            a = FUNCTIONS[name][0](z)
        return a

    def backward(self, out, y):
        delta = out - y  # dL/dout for L = 0.5 * sum((out - y)**2)
        dweights, dbiases = [], []
        for i in reversed(range(len(self.weights))):
            delta = delta * FUNCTIONS[self.activations[i]][1](self.zs[i])  # dL/dz
            dweights.insert(0, self.inputs[i].T @ delta)
            dbiases.insert(0, delta.sum(axis=0))
            delta = delta @ self.weights[i].T  # dL/d(previous activation)
        return dweights, (dbiases if self.biases is not None else None), delta


def forward(weights, biases, activations, x):
    return MLP(weights, biases, activations).forward(x)


def loss_and_gradients(weights, biases, activations, x, y):
    loss, dweights, dbiases, _ = loss_and_input_gradients(weights, biases, activations, x, y)
    return loss, dweights, dbiases


def loss_and_input_gradients(weights, biases, activations, x, y):
    net = MLP(weights, biases, activations)
    out = net.forward(x)
    dweights, dbiases, dx = net.backward(out, y)
    return 0.5 * np.sum((out - y) ** 2), dweights, dbiases, dx
