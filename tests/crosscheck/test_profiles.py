"""Convention profiles against the real tools: thop, ptflops (backend='pytorch'), fvcore and
FlopCounterMode run on nnspec's PyTorch export of every cross-check case (every spec in
specs/ and the layer zoo, at the sizes of sizes.yaml), batch 1, eval mode.

For each tool: the profile's total equals the tool's total; each layer's count equals the
tool's count for that layer's module(s); and fvcore's skip markers name exactly the layers
for which fvcore itself lists unsupported arithmetic ops. Both exports are checked: the
straightforward port (`native_gru=True`, every tanh/sigmoid GRU as torch.nn.GRU, the profiles'
default) and `to_torch`'s default (a reset_after=False GRU as a loop of nn.Linear).
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from crosscheck_harness import ROOT, all_cases, case_id

from analyzer.conventions import recount_with
from analyzer.conventions.measure import TOOLS, example_inputs, measure
from analyzer.export.plan import ExportError, plan_export
from analyzer.export.torch_model import build_torch
from analyzer.symbolic import render

CASES = all_cases()


@pytest.fixture(scope="module", params=CASES, ids=[case_id(c) for c in CASES])
def spec_case(request: pytest.FixtureRequest) -> tuple[str, dict[str, int]]:
    path, values = request.param
    if values is None:
        pytest.fail(f"{path} has no cross-check sizes: add it to tests/crosscheck/sizes.yaml", pytrace=False)
    return path, values


def has_loop_gru(plan) -> bool:
    """Whether native_gru changes the export: a reset_after=False GRU (not cudnn_compatible), wrapped or not."""
    specs = [getattr(layer.spec, "layer", layer.spec) for layer in plan.layers]  # Bidirectional's, TimeDistributed's
    return any(spec.type == "GRU" and not (spec.reset_after or spec.cudnn_compatible) for spec in specs)


@pytest.mark.parametrize("tool", TOOLS)
def test_profile_equals_the_tool(spec_case, tool: str) -> None:
    """The straightforward port (nn.GRU for every GRU) and, where a reset_after=False GRU makes
    it differ, the default export (that GRU as a loop of nn.Linear)."""
    path, values = spec_case
    plan = plan_export(ROOT / path, values, options={"native_gru": True})
    check_profile(path, values, tool, True)
    if has_loop_gru(plan):
        check_profile(path, values, tool, False)


def check_profile(path: str, values: dict[str, int], tool: str, native_gru: bool) -> None:
    plan = plan_export(ROOT / path, values, options={"native_gru": native_gru})
    try:
        model = build_torch(plan)
    except ExportError as error:
        if native_gru:
            pytest.skip(f"no straightforward port: {error}")
        raise
    report = plan.report
    recount = recount_with(report, tool, native_gru=native_gru)
    inputs = example_inputs(model, {x.attr: x.shape for x in plan.inputs})
    measured = measure(tool, lambda: build_torch(plan), inputs)

    problems: list[str] = []
    modules: dict[str, list[str]] = defaultdict(list)  # report row -> its modules (copies of a repeated block)
    for layer in plan.layers:
        modules[layer.row.name].append(layer.attr)
    for name, attrs in modules.items():
        count = recount.layers[name]
        ours, theirs = report.value(count.expr), sum(measured.layers.get(a, 0) for a in attrs)
        if ours != theirs:
            row = report.layers[name]
            problems.append(f"layer '{name}' ({row.type}): profile {ours:,} != {tool} {theirs:,}   "
                            f"[profile formula: {render(count.expr)}]")
        if tool == "fvcore":
            unsupported = {op for a in attrs for op in measured.unsupported.get(a, {})}
            named = set(re.findall(r"aten::\w+", count.skipped or ""))
            if bool(count.skipped) != bool(unsupported) or not named <= unsupported:
                problems.append(f"layer '{name}': profile says {count.skipped or 'not skipped'!r}; fvcore lists "
                                f"unsupported {sorted(unsupported) or 'none'}")
    total = report.value(recount.total)
    if total != measured.total:
        problems.append(f"total: profile {total:,} != {tool} {measured.total:,}   [profile formula: {render(recount.total)}]")
    assert not problems, f"{tool} on the torch export of {path} at {values} (native_gru={native_gru}):\n  " + \
        "\n  ".join(problems)
