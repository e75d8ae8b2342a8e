"""The training step's memory against torch (issue 16): after one real optimizer step on nnspec's PyTorch export,
the elements torch.optim keeps in its `state` (every tensor but the step counts) equal nnspec's optimizer state,
and the parameters that require a gradient equal nnspec's gradients; with no layer frozen and with the first
trainable layer frozen. Every cross-check case whose layers all have a training rule (the others are refused by
--training, and skipped here saying why)."""

from __future__ import annotations

import pytest
from crosscheck_harness import ROOT, all_cases, case_id, loop_capped, torch_model_to_train

from analyzer import analyze
from analyzer.conventions.measure import example_inputs
from analyzer.export.plan import plan_export
from analyzer.layers.backward import NoBackwardRule
from analyzer.training import training_step

torch = pytest.importorskip("torch")

CASES = loop_capped([case for case in all_cases() if case[1] is not None])
OPTIMIZERS = {"momentum": lambda params: torch.optim.SGD(params, lr=0.01, momentum=0.9),
              "adam": lambda params: torch.optim.Adam(params, lr=0.001)}


def torch_step(path: str, values: dict[str, int], optimizer: str, frozen: str | None) -> tuple[int, int]:
    """(elements in the optimizer's state, parameters that require a gradient) after one step, batch 2."""
    plan = plan_export(ROOT / path, values)
    model = torch_model_to_train(plan, frozen, train=True)
    params = [p for p in model.parameters() if p.requires_grad]
    step = OPTIMIZERS[optimizer](params)
    outputs = model(*example_inputs(model, {x.attr: x.shape for x in plan.inputs}, batch=2))
    loss = sum(o.float().sum() for o in (outputs if isinstance(outputs, tuple) else (outputs,)))
    loss.backward()
    idle = [p for p in params if p.grad is None]
    if idle:  # torch.optim makes no state for a parameter that got no gradient: an expert no token was routed to
        pytest.skip(f"{len(idle)} parameter tensors got no gradient in this step (an expert with no routed token); "
                    "nnspec counts every expert's state")
    step.step()
    state = sum(t.numel() for s in step.state.values() for k, t in s.items() if k != "step" and torch.is_tensor(t))
    return state, sum(p.numel() for p in params)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_optimizer_state_and_gradients_match_torch(case, optimizer):
    path, values = case
    report = analyze(ROOT / path).at(**values)
    try:
        training_step(report, optimizer=optimizer)
    except NoBackwardRule as error:
        pytest.skip(f"--training refuses it: {error}")
    first_trainable = next(name for name, row in report.layers.items() if report.value(row.counts.trainable_params))
    for frozen in (None, first_trainable):
        step = training_step(report, optimizer=optimizer, frozen=(frozen,) if frozen else ())
        memory = {k: step.report.value(v) for k, v in step.memory().items()}
        state, gradients = torch_step(path, values, optimizer, frozen)
        assert (memory["optimizer_state"], memory["gradients"]) == (state, gradients), f"frozen: {frozen}"
