"""Names that the Keras layers and the hyper-parameter schema share, kept free of TensorFlow so
that checking a setting never imports it."""

from __future__ import annotations

PEEPHOLE_GATES = ("input", "forget", "output")
"""The gates of a peephole LSTM that may look at the cell state, in canonical order."""
