"""Convention profiles: re-count a Report the way another tool would.

    from analyzer.conventions import recount_with
    thop = recount_with(report, "thop")
    thop.total, thop.layers["gru_1"].expr, thop.skipped

The profiles (profiles.py) name each tool and its unit; the rules, keyed by Keras
layer type, are declared by the layer families next to each layer, over what
nnspec's PyTorch export runs (analyzer/layers/<family>.py, `counted_as`). `PROFILES`
maps the --convention name to its profile. No module imported here imports a
framework (measure.py, which runs the real tools, is imported only by the
cross-check suite and docs/why_counters_disagree.py).
"""

from analyzer.conventions import profiles  # noqa: F401  (importing registers the profiles)
from analyzer.conventions.base import LayerCount, Profile, Recount, Skipped, recount
from analyzer.conventions.registry import PROFILES, missing_rules, register_profile
from analyzer.errors import UsageError, did_you_mean
from analyzer.report import Report

DEFAULT = "nnspec"


def recount_with(report: Report, name: str, *, native_gru: bool = True) -> Recount:
    """The report's layers counted with profile `name` (one of PROFILES) on nnspec's PyTorch export.

    native_gru=True (default) counts `to_torch(spec, native_gru=True)`, a straightforward port: every GRU
    with tanh / sigmoid is torch.nn.GRU. False counts `to_torch(spec)`, which writes a reset_after=False
    GRU as a loop of nn.Linear (only the GRU rules differ)."""
    if name not in PROFILES:
        raise UsageError(f"unknown convention {name!r} (known: {', '.join(PROFILES)})", hint=did_you_mean(name, list(PROFILES)))
    return recount(report, PROFILES[name], native_gru=native_gru)


__all__ = ["DEFAULT", "PROFILES", "LayerCount", "Profile", "Recount", "Skipped", "missing_rules", "recount",
           "recount_with", "register_profile"]
