"""The Python API: Jupyter displays, typing marker, docstrings."""

import html
import inspect
import re
import tomllib
from pathlib import Path

import analyzer
from analyzer import Counts, LayerRow, Report, analyze

ROOT = Path(__file__).resolve().parent.parent


def test_repr_html_is_a_table_with_values_and_formulas():
    report = analyze("specs/pet_cgdnn.yaml", L=256)
    page = report._repr_html_()
    assert page.startswith("<table>") and page.endswith("</table>")
    # one body row per layer plus the total
    assert page.count("<tr>") == 1 + len(report.layers) + 1
    # conv1_1 at L=256: 16*75 + 75 = 1,275 params; outputs (256-7)*75, 16 MACs each
    assert "<td>conv1_1</td><td>Conv2D</td><td>(249, 1, 75)</td><td style='text-align:right'>1,275</td>" in page
    assert f"{249 * 75 * 16:,}<br><code>{html.escape('1200*L - 8400')}</code>" in page
    assert "71,743" in page  # Keras' params at L=256
    assert "L &gt;= 12" in page  # the domain, escaped


def test_repr_html_escapes_names():
    spec = """
name: "<b>x</b>"
symbols: {N: {default: 4}}
inputs: [{name: x, shape: [N]}]
layers:
  - {type: Dense, name: d, units: 2}
"""
    page = analyze(spec)._repr_html_()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_repr_latex_is_display_math():
    report = analyze("specs/scnn.yaml")
    tex = report._repr_latex_()
    assert tex.startswith("$$") and tex.endswith("$$")
    assert r"\begin{array}{lllrrr}" in tex and r"\end{array}" in tex
    assert r"\text{conv1d\_1}" in tex
    # dense_1 at L=128, classes=11: (64*128)*11 + 11 = 90,123 params
    assert "90{,}123" in tex
    # the total: 104,395 params (Keras)
    total = next(line for line in tex.splitlines() if line.startswith(r"\text{Total}"))
    assert "104{,}395" in total


def test_py_typed_ships():
    assert (ROOT / "analyzer" / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["analyzer"]


def test_public_api_is_documented():
    assert analyzer.__doc__ and analyze.__doc__
    for cls in (Report, Counts, LayerRow):
        assert cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(")  # not the dataclass default
    for name in ("value", "at", "symbol", "domain", "grouped", "as_dict", "formula", "training", "_repr_html_",
                 "_repr_latex_"):
        assert getattr(Report, name).__doc__, name
    for name in ("params", "flops", "flops_by_op", "quantity"):
        assert inspect.getdoc(getattr(Counts, name)), name


def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    namespace: dict = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)  # the example as a user would run it


def test_report_training_returns_the_step():
    # x (5,) -> Dense(4, relu) -> Dense(3), SGD, B = 8 (worked in tests/test_training_cli.py): step 167B + 39
    report = analyze("""
name: two
inputs: [{name: x, shape: [5]}]
layers:
  - {type: Dense, name: d1, units: 4, activation: relu}
  - {type: Dense, name: d2, units: 3}
""")
    step = report.training(optimizer="sgd", batch=8)
    assert step.report.value(step.total("flops")) == 1375 and step.report.value(step.total("backward")) == 753
    assert step.report.value(step.layers["d2"].grad_weight) == 4 * 3 * 15 + 3 * 7
    frozen = report.training(optimizer="sgd", frozen="d1", batch=8)  # a name, or a list of names
    assert frozen.frozen == ("d1",) and frozen.report.value(frozen.layers["d1"].grad_weight) == 0
    assert report.training(frozen=["d1", "d2"]).total("optimizer") == 0
    # with dataset=N: 20 samples at B = 8 are 2 steps of 8 and one of 4: 2·1,375 + 707
    from analyzer.training import epoch

    step = report.training(optimizer="sgd", batch=8, dataset=20)
    assert step.report.value(epoch(step).parts["flops"]) == 3457 and step.as_dict()["epoch"]["steps"]["value"] == 3
    torch = report.training(convention="torch", batch=8, input_grad=True)
    assert torch.convention == "torch" and torch.input_grad and torch.report.value(torch.total("optimizer")) == 0
