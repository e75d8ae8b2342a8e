"""Generate large specs for the scaling benchmark.

conv_stack(n): n layers of Conv2D-BatchNormalization-ReLU with a stride-2 conv every
30 layers, so floors nest (and must fold). transformer(n): encoder blocks written
out flat (no repeat), about 10 layers per block.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def conv_stack(n_layers: int) -> dict:
    layers = []
    for i in range(max(1, n_layers // 3)):
        stride = 2 if i % 10 == 9 else 1
        layers.append({"type": "Conv2D", "filters": 16, "kernel_size": 3, "padding": "same", "strides": stride,
                       "use_bias": False})
        layers.append({"type": "BatchNormalization"})
        layers.append({"type": "Activation", "activation": "relu"})
    return {"name": f"conv-stack-{n_layers}", "symbols": {"H": {"default": 2**20, "min": 1}},
            "inputs": [{"name": "image", "shape": ["H", "H", 3]}], "layers": layers}


def transformer(n_layers: int) -> dict:
    layers: list[dict] = []
    block = 0
    while len(layers) < n_layers:
        block += 1
        b = f"b{block}"
        x = layers[-1]["name"] if layers else "tokens"
        layers += [
            {"type": "MultiHeadAttention", "name": f"{b}_mha", "num_heads": "h", "key_dim": "d // h", "inputs": [x, x]},
            {"type": "Add", "name": f"{b}_add1", "inputs": [x, f"{b}_mha"]},
            {"type": "LayerNormalization", "name": f"{b}_ln1"},
            {"type": "Dense", "name": f"{b}_ff1", "units": "4 * d", "activation": "gelu"},
            {"type": "Dense", "name": f"{b}_ff2", "units": "d"},
            {"type": "Dropout", "name": f"{b}_drop", "rate": 0.1},
            {"type": "Add", "name": f"{b}_add2", "inputs": [f"{b}_ln1", f"{b}_drop"]},
            {"type": "LayerNormalization", "name": f"{b}_ln2"},
        ]
    return {"name": f"transformer-{n_layers}", "symbols": {"S": 128, "d": 768, "h": 12},
            "inputs": [{"name": "tokens", "shape": ["S", "d"]}], "layers": layers}


def write(kind: str, n_layers: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"conv": conv_stack, "transformer": transformer}[kind](n_layers)
    path = folder / f"{kind}_{n_layers}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, default_flow_style=None))
    return path


if __name__ == "__main__":
    print(write(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3] if len(sys.argv) > 3 else "bench/generated")))
