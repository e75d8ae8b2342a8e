"""The alternative to nnspec that bench/run.py times: build the model in a framework and count.

    KERAS_BACKEND=torch python bench/framework_count.py specs/scnn.yaml [L]

Builds the spec's Keras 3 model (torch backend) with analyzer.export.to_keras and counts its
params with count_params(); builds the PyTorch model with analyzer.export.to_torch and runs one
forward at batch 1 under torch.utils.flop_counter.FlopCounterMode (which reports 2 x MACs).
Prints the same totals `analyze` prints: params and MACs. For the founding models only
(their input names are known here).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: F401  (imported up front, as a user of the framework would)
import torch
from torch.utils.flop_counter import FlopCounterMode

from analyzer.export import to_keras, to_torch


def input_shapes(L: int) -> dict[str, tuple[int, ...]]:
    # SCNN: input_1; PET-CGDNN: input1, input2, input3 (channels-last, as the spec writes them)
    return {"input_1": (2, L), "input1": (2, L, 1), "input2": (L, 1), "input3": (L, 1)}


def torch_flops(spec: str, L: int, model=None) -> int:
    """FlopCounterMode total (2 x MACs) of one batch-1 forward of the exported torch model at L."""
    model = model if model is not None else to_torch(spec, L=L)
    shapes = input_shapes(L)
    xs = tuple(torch.randn(1, *shapes[name]) for name in model.spec_inputs)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*xs)
    return counter.get_total_flops()


def main() -> None:
    spec = sys.argv[1]
    L = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    params = to_keras(spec, L=L).count_params()
    flops = torch_flops(spec, L)
    print(f"Total params: {params:,}")
    print(f"MACs:         {flops // 2:,}   (FlopCounterMode: {flops:,} = 2 x MACs)")


if __name__ == "__main__":
    main()
