"""Torch modules for the Keras wrappers: Bidirectional (a forward and a backward copy of the wrapped recurrent
module, merged) and TimeDistributed (the wrapped module on every time step at once); the wrapped modules are
given to them built. Only the torch export imports it (to_torch; the torch file writer reads its source text
instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn


def _sublayer_weights(weights, prefix):
    """The Keras weights of one sublayer ('forward_lstm/lstm_cell/kernel' for prefix 'forward_'), keyed by name."""
    out = {}
    for key, value in weights.items():
        if key.startswith(prefix) and "/" in key:
            out[key.rsplit("/", 1)[1]] = value
    return out


class Bidirectional(nn.Module):
    """Keras Bidirectional: a forward copy of the wrapped recurrent layer and a backward one (go_backwards flipped,
    its sequence output flipped back to forward order), merged by merge_mode (concat, sum, mul, ave; None: both).
    An initial state is the forward copy's states then the backward one's; with return_state the outputs are
    followed by the forward copy's final states, then the backward one's, as in Keras."""

    def __init__(self, forward_layer, backward_layer, merge_mode="concat", return_sequences=False, trainable=True,
                 return_state=False):
        super().__init__()
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.merge_mode, self.return_sequences, self.return_state = merge_mode, return_sequences, return_state
        self.requires_grad_(trainable)  # the wrapped layer's trainable: false

    def extra_repr(self):
        return f"merge_mode={self.merge_mode!r}, return_state={self.return_state}"

    def forward(self, x, *initial_state):
        half = len(initial_state) // 2
        y = self.forward_layer(x, *initial_state[:half])
        y_rev = self.backward_layer(x, *initial_state[half:])
        states = ()
        if self.return_state:
            (y, *forward_states), (y_rev, *backward_states) = y, y_rev
            states = (*forward_states, *backward_states)
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        if self.merge_mode is None:
            return (y, y_rev, *states)
        if self.merge_mode == "concat":
            out = torch.cat([y, y_rev], -1)
        elif self.merge_mode == "sum":
            out = y + y_rev
        elif self.merge_mode == "mul":
            out = y * y_rev
        else:
            out = (y + y_rev) / 2
        return (out, *states) if states else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.forward_layer.load_keras_weights(_sublayer_weights(weights, "forward_"))
        self.backward_layer.load_keras_weights(_sublayer_weights(weights, "backward_"))


class TimeDistributed(nn.Module):
    """Keras TimeDistributed: the wrapped layer on each slice x[:, t] of (batch, T, ...), run as one call on
    (batch·T, ...)."""

    def __init__(self, layer, trainable=True):
        super().__init__()
        self.layer = layer
        self.requires_grad_(trainable)  # the wrapped layer's trainable: false

    def forward(self, x):
        batch, steps = x.shape[:2]
        y = self.layer(x.reshape(batch * steps, *x.shape[2:]))
        return y.reshape(batch, steps, *y.shape[1:])

    @torch.no_grad()
    def load_keras_weights(self, weights):
        if hasattr(self.layer, "load_keras_weights"):
            self.layer.load_keras_weights(weights)
