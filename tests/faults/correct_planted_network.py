"""The control: the planted modules' plain network with nothing changed. Every check must pass on it."""

from _planted_network import contract

NAME = "planted-control"

forward, loss_and_gradients, loss_and_input_gradients = contract()
