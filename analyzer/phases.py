"""Prefill and decode (issue 17): what one forward pass of a decoder costs with and without a key/value cache.

prefill (the default): T tokens per sequence, no cache, the logits at every position (transformers' default).
decode: T new tokens per sequence (1 by default: one generation step) after P past tokens whose keys and values
each causal attention reads from its cache. The spec is the same; only the attentions change (the scores of the new
queries over P + T keys, analyzer/layers/transformer.py) and the positions of a learned position embedding. Every
other layer must act on each position alone (a Dense, a norm over the features, a residual add): a layer that
mixes positions (a convolution or a recurrence over T, an attention without a cache) would need its own past, and
is refused, never counted as if it had none.

The KV cache (`kv_cache`): per causal attention and sample, the elements written for the T new tokens and read for
the P cached ones (`caches_as` next to the layer), summed over the model with the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy

from analyzer.errors import UsageError
from analyzer.layers.registry import KV_CACHES
from analyzer.report import Report
from analyzer.spec.loader import Spec
from analyzer.symbolic import ZERO, SizeSymbol, make_symbol

PHASES = ("prefill", "decode")
SEQUENCE, CACHE = "T", "P"
# Layer types that act on each position alone, whatever T is (their `axis`, where they have one, the last).
PER_POSITION = {"InputLayer", "Dense", "Embedding", "ReversibleEmbedding", "PositionEmbedding", "RMSNormalization",
                "LayerNormalization", "BatchNormalization", "Activation", "Softmax", "Dropout", "GaussianDropout",
                "GaussianNoise", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
                "GatedMLP"}


def decode_spec(spec: Spec) -> tuple[Spec, sympy.Symbol]:
    """The spec for --phase decode: T new tokens (default 1) after P cached ones (default the spec's T default),
    and the cache symbol. Refuses a spec without T, one that declares P itself, and any layer that mixes positions."""
    names = {s.name: s for s in spec.symbols}
    where = f"{spec.file}: " if spec.file else ""
    if SEQUENCE not in names:
        raise UsageError(f"{where}--phase decode needs the sequence length as the symbol {SEQUENCE} (the new tokens); "
                         f"the spec declares {', '.join(names) or 'no symbols'}")
    if CACHE in names:
        raise UsageError(f"{where}--phase decode names the cached tokens {CACHE}, which the spec declares itself "
                         f"({names[CACHE].description or 'a symbol of its own'}): rename it to use --phase decode")
    for entry in spec.layers:
        if entry.type in KV_CACHES:
            continue
        axis = getattr(entry.spec, "axis", -1)
        if entry.type not in PER_POSITION or axis not in (-1, [-1]):
            reason = f"axis {axis}" if entry.type in PER_POSITION else "it is not known to act on each position alone"
            raise UsageError(f"--phase decode: layer '{entry.name}' ({entry.type}) would need the past positions "
                             f"({reason}); nnspec counts a decode step only for causal attention with a key/value "
                             f"cache and layers that act per position", location=entry.location)
    old = names[SEQUENCE]
    cache = make_symbol(CACHE)
    symbols = [replace(s, default=1) if s.name == SEQUENCE else s for s in spec.symbols]
    symbols.append(SizeSymbol(cache, old.default, 1, "cached tokens (--phase decode: the past tokens' keys and values)"))
    return replace(spec, symbols=symbols), cache


@dataclass(frozen=True)
class KVCache:
    """Elements of the key/value cache for the whole batch: written for the new tokens, read for the cached ones,
    and held after the pass (written + read)."""

    written: sympy.Expr
    read: sympy.Expr

    @property
    def held(self) -> sympy.Expr:
        return self.written + self.read


def kv_cache(report: Report, batch: sympy.Expr | int = 1) -> KVCache:
    """The model's key/value cache: each caching layer's rule, times its copies (a block repeated N times) and B."""
    written, read = ZERO, ZERO
    for row in report.layers.values():
        rule = KV_CACHES.get(row.type)
        if rule is None:
            continue
        w, r = rule(row)
        written, read = written + w * row.multiplier, read + r * row.multiplier
    return KVCache(batch * written, batch * read)
