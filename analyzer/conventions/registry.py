"""The table of convention profiles: --convention name -> Profile.

A second profile with the same name, or an explicit rule table for a layer type
nnspec does not know, is a programming error and raises at import.
"""

from __future__ import annotations

from analyzer.conventions.base import Profile
from analyzer.layers import LAYERS
from analyzer.layers.registry import INPUT_LAYER

PROFILES: dict[str, Profile] = {}
LAYER_TYPES = frozenset({INPUT_LAYER, *LAYERS})


def register_profile(profile: Profile) -> Profile:
    if profile.name in PROFILES:
        raise RuntimeError(f"duplicate convention profile {profile.name!r}")
    unknown = sorted(set(profile.table or ()) - LAYER_TYPES)
    if unknown:
        raise RuntimeError(f"convention profile {profile.name!r} has rules for unknown layer types {unknown}")
    PROFILES[profile.name] = profile
    return profile


def missing_rules(profile: Profile, types: frozenset[str] | set[str] = LAYER_TYPES) -> list[str]:
    """Layer types among `types` the profile has no rule for (the test suite requires none at all, for every
    profile: tests/layers/test_completeness.py)."""
    return sorted(set(types) - set(profile.rules))
