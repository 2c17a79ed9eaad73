"""Correct: _planted_network.py's plain network with nothing changed (the control of the files built on it).

The reference's own activation functions in a plain loop. Every faulty_*.py built on _planted_network.py is
this network with one piece replaced, so tests/test_properties_catch_bugs.py runs each check on this control
first: where the control passes and the fault fails on the same example, the failure is the bug's doing.
"""

from _planted_network import contract

NAME = "correct_planted_network"

forward, loss_and_gradients, loss_and_input_gradients = contract()
