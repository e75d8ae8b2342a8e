"""The --convention profiles: which tool, which version, what one count is.

The per-layer rules of the four tool profiles are declared by the layer families
(analyzer/layers/<family>.py, `counted_as`), next to each layer, over what nnspec's
PyTorch export runs for it. What each tool does in general:

- torch: torch.utils.flop_counter.FlopCounterMode counts dispatched aten ops that have a
  formula in its `flop_registry` (mm, addmm, bmm, baddbmm, convolution, attention): 2
  FLOPs per multiply-accumulate ("Should be 2 * k - 1 technically"), never the bias
  (`addmm_flop` = `mm_flop`; `conv_flop_count`: "Computation for bias are ignored").
  Every other op (normalization, activations, elementwise math, pooling, softmax) counts 0.
- thop: `thop.profile` hooks leaf modules by exact type (`register_hooks` in
  thop/profile.py; a hook adds on every call), counts one per multiply-accumulate and never
  the bias. Plain calls (torch.relu, torch.softmax, torch.cos, the * + - operators,
  torch.mean, reshapes) are no modules: thop does not see them.
- ptflops: `get_model_complexity_info(backend='pytorch')` hooks modules by exact type
  (`MODULES_MAPPING` in ptflops/pytorch_ops.py), one per multiply-accumulate plus one per
  biased output, and patches some functions while it runs (`FUNCTIONAL_MAPPING`: F.relu6,
  F.elu, F.gelu, F.silu, F.softmax, the pooling functions; `TENSOR_OPS_MAPPING`: torch.mul,
  torch.add, torch.matmul, ...), each call counting its input's numel. The export calls
  torch.relu, torch.sigmoid, torch.tanh, torch.softmax, torch.cos, torch.maximum and the
  * + - operators, which ptflops does not patch. nn.MaxPool/AvgPool call the patched
  F.*_pool: counted twice.
- fvcore: `FlopCountAnalysis(model).total()` traces the model (eval mode) with torch.jit
  and counts the aten ops it has a handle for (`_DEFAULT_SUPPORTED_OPS` in
  fvcore/nn/flop_count.py), one per multiply-accumulate, never the bias. Ops in
  `_IGNORED_OPS` (relu, dropout, reshape, cat, pad, ...) count 0 on purpose; any other op
  is *unsupported*: fvcore counts it 0 and only warns, and the layer is reported as
  skipped, naming the ops, with what fvcore still counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from analyzer.conventions.base import Profile
from analyzer.conventions.registry import register_profile
from analyzer.layers.recurrent import RECURRENT
from analyzer.symbolic import product

if TYPE_CHECKING:
    from analyzer.report import LayerRow

register_profile(Profile(
    name="torch",
    tool="torch.utils.flop_counter.FlopCounterMode (torch 2.13.0, CPU)",
    unit="FLOPs = 2 per multiply-accumulate of conv / matmul; no bias, no other op",
))
register_profile(Profile(
    name="thop",
    tool="thop 0.1.1.post2209072238 (thop.profile)",
    unit="MACs of conv / linear / RNN (no bias), BatchNorm and LayerNorm 2 or 4 per element, RNN gate arithmetic",
))
register_profile(Profile(
    name="ptflops",
    tool="ptflops 0.7.5 (get_model_complexity_info, backend='pytorch')",
    unit="MACs of conv / linear / RNN + 1 per biased output, normalization 1 or 2 per element, "
         "pooling, some activations and RNN gate arithmetic",
))
register_profile(Profile(
    name="fvcore",
    tool="fvcore 0.1.5.post20221221 (FlopCountAnalysis.total(), model in eval mode)",
    unit="MACs of traced conv / linear (no bias), normalization 2, 4 or 5 per element; unsupported ops count 0",
))


def nnspec_flops(row: LayerRow) -> sympy.Expr:
    """nnspec's FLOPs of the layer (`Counts.flops`: dot + bias + activation + other), as docs/conventions.md
    defines them per layer."""
    return row.counts.flops


register_profile(Profile(
    name="nnspec",
    tool="nnspec (docs/conventions.md)",
    unit="FLOPs: 2n-1 per n-term dot product output, +1 per bias, activations and elementwise work",
    per_copy=False,
    generic=nnspec_flops,
))


def weight_positions(row: LayerRow) -> sympy.Expr:
    """Where the layer's weights are applied: the output positions (H x W, the product of every output axis but the
    channels); for a recurrent layer (GRU, LSTM, SimpleRNN, Bidirectional), its T timesteps (the weights act at
    every step, whatever return_sequences says)."""
    if row.type in (*RECURRENT, "Bidirectional"):
        return row.input_shapes[0][0]
    return product(row.output_shape[:-1])


def params_times_positions(row: LayerRow) -> sympy.Expr:
    """The founding document: "FLOPs = paras * H * W * 2" (0 for a layer without params). Not a tool to match
    exactly, and not exact itself: it counts every parameter (biases, BatchNorm's four vectors) once per position
    where the layer's weights are applied. The document applies it to conv, dense and (lacking a formula) the GRU;
    for a recurrent layer the positions are its timesteps."""
    return 2 * row.counts.params * weight_positions(row)


register_profile(Profile(
    name="seed-approx",
    tool="the founding document's approximation",
    unit="2 · params · output positions (timesteps for a recurrent layer), layers with params only",
    per_copy=False,
    generic=params_times_positions,
    approximate=True,
))
