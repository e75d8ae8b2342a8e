"""Torch modules for the Keras recurrent layers: GRU (torch.nn.GRU, for reset_after=True with the default
activations), KerasGRU, KerasRNN (SimpleRNN) and KerasLSTM as loops over time, and load_loop_weights, which
loads Keras weights into a loop's two nn.Linear. Only the torch export imports it (to_torch; the torch file
writer reads its source text instead): `import analyzer` never imports torch.
"""

import torch
from torch import nn

from analyzer.layers.torch_modules.common import activate


def _zrh_to_rzn(w):
    """Keras orders the GRU gates z, r, h on the last axis; torch orders them r, z, n."""
    z, r, h = w.chunk(3, -1)
    return torch.cat([r, z, h], -1)


class GRU(nn.Module):
    """Keras GRU with reset_after=True, tanh and sigmoid: that is torch.nn.GRU (batch_first)."""

    def __init__(self, input_size, units, use_bias=True, return_sequences=False, go_backwards=False, return_state=False):
        super().__init__()
        self.gru = nn.GRU(input_size, units, bias=use_bias, batch_first=True)
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.return_state = return_state

    def extra_repr(self):
        return f"return_sequences={self.return_sequences}, go_backwards={self.go_backwards}, return_state={self.return_state}"

    def forward(self, x, h0=None):
        if self.go_backwards:
            x = x.flip(1)
        out, h = self.gru(x, None if h0 is None else h0.unsqueeze(0).contiguous())
        out = out if self.return_sequences else out[:, -1]
        return (out, h[0]) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        self.gru.weight_ih_l0.copy_(_zrh_to_rzn(torch.as_tensor(weights["kernel"])).T)
        self.gru.weight_hh_l0.copy_(_zrh_to_rzn(torch.as_tensor(weights["recurrent_kernel"])).T)
        if self.gru.bias:
            bias = torch.as_tensor(weights["bias"])
            if bias.dim() != 2:
                raise ValueError("a Keras GRU with reset_after=False has one bias vector; torch.nn.GRU computes "
                                 "another function (reset_after=True) and takes two")
            self.gru.bias_ih_l0.copy_(_zrh_to_rzn(bias[0]))
            self.gru.bias_hh_l0.copy_(_zrh_to_rzn(bias[1]))


class KerasGRU(nn.Module):
    """Keras GRU as a loop over time, for what nn.GRU cannot compute (reset_after=False, other activations).

    Gates in Keras' order z, r, h. The input kernel runs once over the whole sequence; per step:
      reset_after=False: z, r = act_r(x_z + h U_z), act_r(x_r + h U_r); hh = act(x_h + (r*h) U_h)
      reset_after=True:  z, r = act_r(x_z + (h U)_z), act_r(x_r + (h U)_r); hh = act(x_h + r*(h U)_h)
      h = z*h + (1 - z)*hh
    (h U includes the recurrent bias with reset_after=True.)
    """

    def __init__(self, input_size, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 reset_after=False, return_sequences=False, go_backwards=False, return_state=False):
        super().__init__()
        self.units = units
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.reset_after = reset_after
        self.return_sequences, self.go_backwards, self.return_state = return_sequences, go_backwards, return_state
        self.kernel = nn.Linear(input_size, 3 * units, bias=use_bias)
        if reset_after:
            self.recurrent_kernel = nn.Linear(units, 3 * units, bias=use_bias)
        else:
            self.recurrent_zr = nn.Linear(units, 2 * units, bias=False)
            self.recurrent_h = nn.Linear(units, units, bias=False)

    def extra_repr(self):
        return (f"activation={self.activation!r}, recurrent_activation={self.recurrent_activation!r}, "
                f"reset_after={self.reset_after}, return_sequences={self.return_sequences}, go_backwards={self.go_backwards}")

    def forward(self, x, h0=None):
        if self.go_backwards:
            x = x.flip(1)
        xs = self.kernel(x)  # (batch, steps, 3 * units)
        h = x.new_zeros(x.shape[0], self.units) if h0 is None else h0
        outputs = []
        for t in range(x.shape[1]):
            x_z, x_r, x_h = xs[:, t].chunk(3, -1)
            if self.reset_after:
                h_z, h_r, h_h = self.recurrent_kernel(h).chunk(3, -1)
                z = activate(x_z + h_z, self.recurrent_activation)
                r = activate(x_r + h_r, self.recurrent_activation)
                hh = activate(x_h + r * h_h, self.activation)
            else:
                h_z, h_r = self.recurrent_zr(h).chunk(2, -1)
                z = activate(x_z + h_z, self.recurrent_activation)
                r = activate(x_r + h_r, self.recurrent_activation)
                hh = activate(x_h + self.recurrent_h(r * h), self.activation)
            h = z * h + (1 - z) * hh
            outputs.append(h)
        out = torch.stack(outputs, 1) if self.return_sequences else h
        return (out, h) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        kernel = torch.as_tensor(weights["kernel"])  # (input_size, 3 * units)
        recurrent = torch.as_tensor(weights["recurrent_kernel"])  # (units, 3 * units)
        self.kernel.weight.copy_(kernel.T)
        bias = torch.as_tensor(weights["bias"]) if "bias" in weights else None
        if self.reset_after:
            self.recurrent_kernel.weight.copy_(recurrent.T)
            if bias is not None:
                self.kernel.bias.copy_(bias[0])
                self.recurrent_kernel.bias.copy_(bias[1])
        else:
            self.recurrent_zr.weight.copy_(recurrent[:, : 2 * self.units].T)
            self.recurrent_h.weight.copy_(recurrent[:, 2 * self.units :].T)
            if bias is not None:
                self.kernel.bias.copy_(bias)


@torch.no_grad()
def load_loop_weights(module, weights):
    """Keras weights into a recurrent loop of two nn.Linear (kernel, recurrent_kernel): Keras has one
    bias vector, so a second (CuDNN-style) recurrent bias is zero."""
    module.kernel.weight.copy_(torch.as_tensor(weights["kernel"]).T)
    module.recurrent_kernel.weight.copy_(torch.as_tensor(weights["recurrent_kernel"]).T)
    if "bias" in weights:
        module.kernel.bias.copy_(torch.as_tensor(weights["bias"]))
        if module.recurrent_kernel.bias is not None:
            module.recurrent_kernel.bias.zero_()


class KerasRNN(nn.Module):
    """Keras SimpleRNN as a loop over time: h = act(x W + b + h U)."""

    def __init__(self, input_size, units, activation="tanh", use_bias=True, return_sequences=False, go_backwards=False,
                 return_state=False):
        super().__init__()
        self.units, self.activation = units, activation
        self.return_sequences, self.go_backwards, self.return_state = return_sequences, go_backwards, return_state
        self.kernel = nn.Linear(input_size, units, bias=use_bias)
        self.recurrent_kernel = nn.Linear(units, units, bias=False)

    def extra_repr(self):
        return f"activation={self.activation!r}, return_sequences={self.return_sequences}, go_backwards={self.go_backwards}"

    def forward(self, x, h0=None):
        if self.go_backwards:
            x = x.flip(1)
        xs = self.kernel(x)
        h = x.new_zeros(x.shape[0], self.units) if h0 is None else h0
        outputs = []
        for t in range(x.shape[1]):
            h = activate(xs[:, t] + self.recurrent_kernel(h), self.activation)
            outputs.append(h)
        out = torch.stack(outputs, 1) if self.return_sequences else h
        return (out, h) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        load_loop_weights(self, weights)


class KerasLSTM(nn.Module):
    """Keras LSTM as a loop over time (gates in Keras' order i, f, c, o, which is also torch's):
    i, f, o = act_r(.), g = act(.), c = f*c + i*g, h = o*act(c).

    One bias vector, like Keras; recurrent_bias=True adds the second one of Keras 2's CuDNNLSTM and
    torch.nn.LSTM (the two only add up). A loop rather than nn.LSTM, whose fused CPU kernel
    FlopCounterMode does not see.
    """

    def __init__(self, input_size, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 return_sequences=False, go_backwards=False, recurrent_bias=False, return_state=False):
        super().__init__()
        self.units = units
        self.activation, self.recurrent_activation = activation, recurrent_activation
        self.return_sequences, self.go_backwards, self.return_state = return_sequences, go_backwards, return_state
        self.kernel = nn.Linear(input_size, 4 * units, bias=use_bias)
        self.recurrent_kernel = nn.Linear(units, 4 * units, bias=use_bias and recurrent_bias)

    def extra_repr(self):
        return (f"activation={self.activation!r}, recurrent_activation={self.recurrent_activation!r}, "
                f"return_sequences={self.return_sequences}, go_backwards={self.go_backwards}")

    def forward(self, x, h0=None, c0=None):
        if self.go_backwards:
            x = x.flip(1)
        xs = self.kernel(x)
        h = x.new_zeros(x.shape[0], self.units) if h0 is None else h0
        c = x.new_zeros(x.shape[0], self.units) if c0 is None else c0
        outputs = []
        for t in range(x.shape[1]):
            i, f, g, o = (xs[:, t] + self.recurrent_kernel(h)).chunk(4, -1)
            i = activate(i, self.recurrent_activation)
            f = activate(f, self.recurrent_activation)
            o = activate(o, self.recurrent_activation)
            c = f * c + i * activate(g, self.activation)
            h = o * activate(c, self.activation)
            outputs.append(h)
        out = torch.stack(outputs, 1) if self.return_sequences else h
        return (out, h, c) if self.return_state else out

    @torch.no_grad()
    def load_keras_weights(self, weights):
        load_loop_weights(self, weights)
