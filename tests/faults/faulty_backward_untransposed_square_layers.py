"""dL/dA_prev is delta @ W instead of delta @ W^T wherever W is square (a transpose slip with no shape error).
Caught by: gradient agreement

Right for every non-square layer; unlike faulty_reshape_for_transpose (wrong for every layer that is not a
single row or column), it needs a square layer below the output. Built on _planted_network.py.
"""

from _planted_network import contract

NAME = "faulty_backward_untransposed_square_layers"


def _propagate(delta, w):
    return delta @ w if w.shape[0] == w.shape[1] else delta @ w.T  # BUG: W for W^T when square


forward, loss_and_gradients, loss_and_input_gradients = contract(propagate=_propagate)
