"""The NumPy reference: activations, the network with hand-derived backprop, the collapse, the seed experiment."""
