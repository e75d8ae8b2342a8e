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

PHASES = ("prefill", "decode", "generate")
SEQUENCE, CACHE = "T", "P"
# Layer types that act on each position alone, whatever T is (their `axis`, where they have one, the last).
PER_POSITION = {"InputLayer", "Dense", "Embedding", "ReversibleEmbedding", "PositionEmbedding", "RMSNormalization",
                "LayerNormalization", "BatchNormalization", "Activation", "Softmax", "Dropout", "GaussianDropout",
                "GaussianNoise", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
                "GatedMLP", "Rescaling", "MixtureOfExperts"}


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


# -- generation: a prompt of T tokens, then G generated ----------------------------------------------------------

GENERATED = "G"


@dataclass(frozen=True)
class Generation:
    """transformers' generate(max_new_tokens=G) on a prompt of T: the prefill (its logits give token 1), then G - 1
    decode steps of one token, step k (0-based) reading a cache of T + k. Totals for the whole batch of one sample,
    closed forms in T, G and the spec's symbols (the sum over the steps done by sympy); `report` is the prefill's,
    with G among its symbols."""

    report: Report
    macs: sympy.Expr
    flops: sympy.Expr
    kv_cache: sympy.Expr  # elements held at the end: T + G - 1 tokens' keys and values


def generation(spec: Spec, bias: str = "spec") -> Generation:
    from analyzer.graph import analyze_spec  # graph imports the layers, which import this module's registry

    if GENERATED in {s.name for s in spec.symbols}:
        raise UsageError(f"--phase generate names the generated tokens {GENERATED}, which the spec declares itself")
    prefill = analyze_spec(spec, bias=bias)
    decode_version, cache = decode_spec(spec)
    decode = analyze_spec(decode_version, bias=bias, kv_cache=cache)
    prompt = next(s.symbol for s in spec.symbols if s.name == SEQUENCE)
    generated, step = make_symbol(GENERATED), sympy.Dummy("k", integer=True, nonnegative=True)

    def summed(expr: sympy.Expr) -> sympy.Expr:
        at_step = expr.subs(prompt, 1).subs(cache, prompt + step)  # one new token after T + k cached
        # a min(T + k + 1, W) (a sliding window) has no polynomial sum; sympy would try for seconds, then give up
        piecewise = at_step.atoms(sympy.Min, sympy.Max, sympy.floor, sympy.ceiling, sympy.Mod)
        closed = not any(a.has(step) for a in piecewise)
        total = sympy.summation(sympy.expand(at_step), (step, 0, generated - 2)) if closed else None
        if total is None or total.has(sympy.Sum):
            raise UsageError("--phase generate: the sum over the decode steps has no closed form here (a sliding "
                             "window's min(T + k + 1, W)); count the steps with --phase decode at each P")
        return sympy.expand(total)

    declared = SizeSymbol(generated, 1, 1, "generated tokens (--phase generate: the prefill, then G - 1 decode steps)")
    report = replace(prefill, symbols=(*prefill.symbols, declared), values={**prefill.values, generated: 1})
    per_token = kv_cache(decode).written.subs(prompt, 1)  # the decode spec's T new tokens, one
    return Generation(report, prefill.total.macs + summed(decode.total.macs),
                      prefill.total.flops + summed(decode.total.flops),
                      sympy.expand(per_token * (prompt + generated - 1)))


def generation_dict(result: Generation, report: Report, unit: int) -> dict[str, object]:
    """The JSON `generation` block, at `report`'s values (the prefill's report, with G); unit: bytes per element."""
    return {"prompt": SEQUENCE, "generated": GENERATED, "decode_steps": report.formula(make_symbol(GENERATED) - 1),
            "macs": report.formula(result.macs), "flops": report.formula(result.flops),
            "kv_cache": {"elements": report.formula(result.kv_cache),
                         "bytes": report.formula(result.kv_cache * unit)}}


def generation_lines(result: Generation, report: Report, dtype: str, unit: int) -> list[str]:
    from analyzer.symbolic import render

    def shown(expr: sympy.Expr, unit: str) -> str:
        return f"{render(expr)} = {report.value(expr):,} {unit}"

    return [f"Generation (a prompt of {SEQUENCE} tokens, then {GENERATED} generated: the prefill and "
            f"{GENERATED} - 1 decode steps, step k reading {SEQUENCE} + k cached tokens):",
            f"  MACs:      {shown(result.macs, '')}".rstrip(),
            f"  FLOPs:     {shown(result.flops, '')}".rstrip(),
            f"  KV cache at the end: {shown(result.kv_cache, 'elements')}, "
            f"{shown(result.kv_cache * unit, 'bytes')} ({dtype})"]
