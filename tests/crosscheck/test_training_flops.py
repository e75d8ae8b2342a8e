"""`--training --convention torch` against FlopCounterMode itself (issue 16): the forward and the backward of
nnspec's PyTorch export, counted by torch.utils.flop_counter.FlopCounterMode with the loss the sum of the outputs
and the inputs not requiring a gradient, equal nnspec's torch-convention step at B = 1, 2 and 8: with no layer
frozen, with the first trainable layer frozen, and with a trainable layer in the middle frozen. Every cross-check
case whose layers all have a training rule (the others are refused by --training, and skipped saying why)."""

from __future__ import annotations

import pytest
from crosscheck_harness import ROOT, all_cases, case_id, loop_capped, torch_model_to_train

from analyzer import analyze
from analyzer.conventions.measure import example_inputs
from analyzer.export.plan import plan_export
from analyzer.layers.backward import NoBackwardRule
from analyzer.training import training_step

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

CASES = loop_capped([case for case in all_cases() if case[1] is not None])
BATCHES = (1, 2, 8)


def torch_step_flops(path: str, values: dict[str, int], batch: int, frozen: str | None) -> int:
    plan = plan_export(ROOT / path, values)
    # eval: the counted ops are the same in train mode, and eval lets BatchNorm take a batch of 1
    model = torch_model_to_train(plan, frozen, train=False)
    inputs = example_inputs(model, {x.attr: x.shape for x in plan.inputs}, batch=batch)
    counter = FlopCounterMode(display=False)
    with counter:
        outputs = model(*inputs)
        loss = sum(o.float().sum() for o in (outputs if isinstance(outputs, tuple) else (outputs,)))
        loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_torch_convention_training_equals_flop_counter_mode(case):
    path, values = case
    report = analyze(ROOT / path).at(**values)
    try:
        training_step(report, convention="torch")
    except NoBackwardRule as error:
        pytest.skip(f"--training refuses it: {error}")
    trainable = [name for name, row in report.layers.items() if report.value(row.counts.trainable_params)]
    for frozen in (None, trainable[0], trainable[len(trainable) // 2]):
        step = training_step(report, convention="torch", frozen=(frozen,) if frozen else ())
        for batch in BATCHES:
            expected = step.report.at(B=batch).value(step.total("flops"))
            assert expected == torch_step_flops(path, values, batch, frozen), f"frozen {frozen}, B = {batch}"
