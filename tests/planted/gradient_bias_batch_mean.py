"""Planted bug (family 2): dL/db is the batch mean of delta, not its sum (invisible with a batch of one)."""

from _planted_network import contract

NAME = "planted-bias-gradient-batch-mean"

forward, loss_and_gradients, loss_and_input_gradients = contract(bias_sum=lambda delta: delta.mean(axis=0))
