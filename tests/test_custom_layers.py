"""User-declared layers: --custom-layers FILE.yaml for model files, a spec's custom_layers: section
(analyzer/spec/custom_layers.py, analyzer/importers/custom_layers.py, docs/importers.md#custom-layers).

The Keras tests build a model with the user's own layer classes in the test (KERAS_BACKEND=torch) and skip
without keras; the declaration and spec tests need no framework.
"""

import json
import os
import textwrap

import pytest

from analyzer import cli
from analyzer.graph import analyze_spec
from analyzer.spec.loader import parse_spec
from analyzer.symbolic import render


def run_cli(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    """Input (10, 4) -> MyDense(width=8) (a kernel 4x8 and a bias 8 of its own) -> Scale3 (2x+1, no weights)
    -> Dense(3), saved as .keras and as to_json(); returns (directory, model.count_params())."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")

    @keras.saving.register_keras_serializable(package="nnspec_test")
    class MyDense(keras.layers.Layer):
        def __init__(self, width, **kwargs):
            super().__init__(**kwargs)
            self.width = width

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.width))
            self.bias = self.add_weight(shape=(self.width,))

        def call(self, x):
            return x @ self.kernel + self.bias

        def get_config(self):
            return {**super().get_config(), "width": self.width}

    @keras.saving.register_keras_serializable(package="nnspec_test")
    class Scale3(keras.layers.Layer):
        def call(self, x):
            return x * 2.0 + 1.0

    inputs = keras.Input((10, 4))
    x = MyDense(8)(inputs)
    x = Scale3()(x)
    outputs = keras.layers.Dense(3)(x)
    model = keras.Model(inputs, outputs)
    directory = tmp_path_factory.mktemp("custom_keras")
    model.save(directory / "model.keras")
    (directory / "model.json").write_text(model.to_json(), encoding="utf-8")
    return directory, model.count_params()


AS_DENSE = """
MyDense: {as: Dense, args: {units: width}}
Scale3: {elementwise: true, flops_per_element: 2}
"""
FORMULAS = """
MyDense:
  fields: [width]
  params: "width * features + width"
  macs: "positions * features * width"
  flops: "2 * positions * features * width"
  output_shape: [in_1, width]
Scale3: {elementwise: true, flops_per_element: 2}
"""


def test_keras_model_is_refused_without_a_declaration(capsys, keras_model):
    directory, _ = keras_model
    for name in ("model.keras", "model.json"):
        status, out, err = run_cli(capsys, directory / name)
        assert status == 2 and out == ""
        assert "layer 'my_dense' (MyDense)" in err and "Keras class 'MyDense'" in err
        assert "--custom-layers FILE.yaml" in err and "Traceback" not in err


@pytest.mark.parametrize("declarations", [AS_DENSE, FORMULAS], ids=["as_dense", "formulas"])
@pytest.mark.parametrize("file", ["model.keras", "model.json"])
def test_keras_model_imports_with_a_declaration(capsys, tmp_path, keras_model, declarations, file):
    directory, keras_params = keras_model
    decl = write(tmp_path, "layers.yaml", declarations)
    status, out, err = run_cli(capsys, directory / file, "--custom-layers", decl, "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    layers = {layer["name"]: layer for layer in data["layers"]}
    # MyDense: 4*8 kernel + 8 bias = 40; Dense(3) on 8 features: 8*3 + 3 = 27; Scale3 has none: 67 in all
    assert data["total"]["params"]["value"] == keras_params == 67
    assert layers["my_dense"]["params"]["value"] == 40 and layers["my_dense"]["output_shape"] == ["10", "8"]
    assert layers["my_dense"]["macs"]["value"] == 10 * 4 * 8  # 320: 10 positions, 4 in, 8 out
    assert layers["my_dense"]["flops"]["value"] == 640  # Dense: 10*8 outputs * (2*4 - 1) + 80 bias = 640; formula: 2*320
    assert layers["scale3"]["flops"]["value"] == 2 * 10 * 8 and layers["scale3"]["params"]["value"] == 0  # 160
    assert layers["my_dense"]["type"] == ("Dense" if declarations is AS_DENSE else "MyDense")


def test_converted_spec_carries_its_declarations(capsys, tmp_path, keras_model):
    directory, _ = keras_model
    decl = write(tmp_path, "layers.yaml", FORMULAS)
    spec = tmp_path / "converted.yaml"
    status, _, err = run_cli(capsys, "convert", directory / "model.json", "--custom-layers", decl, "-o", spec)
    assert status == 0, err
    text = spec.read_text(encoding="utf-8")
    assert "custom_layers:" in text and "{type: MyDense, name: my_dense, width: 8}" in text
    report = analyze_spec(parse_spec(text, str(spec)))
    assert report.value(report.total.params) == 67


def test_compare_takes_the_declarations(capsys, tmp_path, keras_model):
    directory, _ = keras_model
    decl = write(tmp_path, "layers.yaml", AS_DENSE)
    status, out, err = run_cli(capsys, "compare", directory / "model.keras", "--custom-layers", decl)
    assert status == 0, err
    assert "67" in out


def test_missing_config_field_names_the_field(capsys, tmp_path, keras_model):
    directory, _ = keras_model
    decl = write(tmp_path, "layers.yaml", """
        MyDense: {fields: [depth], params: "depth"}
        Scale3: {elementwise: true, flops_per_element: 1}
    """)
    status, _, err = run_cli(capsys, directory / "model.json", "--custom-layers", decl)
    assert status == 2 and "no field 'depth'" in err and "my_dense" in err and "layers.yaml" in err


SPEC = """
symbols: {L: 16}
custom_layers:
  MyDense: {as: Dense, args: {units: width}, set: {use_bias: false}}
  Gelu3: {elementwise: true, flops_per_element: 3}
  Proj:
    fields: [units]
    params: "units * features + units"
    non_trainable_params: "units"
    macs: "positions * features * units"
    flops: "2 * out_elements * features"
    output_shape: [in_1, units]
inputs: [{name: x, shape: [L, 4]}]
layers:
  - {type: MyDense, name: d, width: 8}
  - {type: Gelu3, name: g}
  - {type: Proj, name: p, units: 5}
  - {type: Proj, name: q, units: 2, trainable: false}
"""


def test_spec_section_three_kinds_by_hand():
    report = analyze_spec(parse_spec(textwrap.dedent(SPEC), "custom.yaml"))
    rows = {row.name: row for row in report.layers.values()}
    # (a) Dense(8, use_bias=False) on 4 features: 4*8 = 32 params, L*4*8 = 32L MACs, L*8 outputs * (2*4 - 1) = 56L FLOPs
    d = rows["d"]
    assert d.type == "Dense"
    assert (render(d.counts.trainable_params), render(d.counts.macs), render(d.counts.flops)) == ("32", "32*L", "56*L")
    # (b) 3 FLOPs per element of (L, 8): 24L, no params, shape kept
    g = rows["g"]
    assert (render(g.counts.flops), render(g.counts.params), [render(x) for x in g.output_shape]) == ("24*L", "0", ["L", "8"])
    # (c) units=5 on 8 features: 5*8 + 5 = 45 trainable, 5 non-trainable; MACs L*8*5 = 40L;
    #     FLOPs 2 * out_elements * features = 2 * (L*5) * 8 = 80L; output (L, 5)
    p = rows["p"]
    assert (render(p.counts.trainable_params), render(p.counts.non_trainable_params)) == ("45", "5")
    assert (render(p.counts.macs), render(p.counts.flops), [render(x) for x in p.output_shape]) == ("40*L", "80*L", ["L", "5"])
    # trainable: false moves all of q's params (units=2 on 5 features): 2*5 + 2 = 12, plus its 2 -> 14 non-trainable;
    # FLOPs 2 * (L*2) * 5 = 20L
    q = rows["q"]
    assert (render(q.counts.trainable_params), render(q.counts.non_trainable_params)) == ("0", "14")
    # total FLOPs 56L + 24L + 80L + 20L = 180L: 5760 at L=32
    at_32 = report.at(L=32)
    assert at_32.value(at_32.total.flops) == 180 * 32


def test_spec_section_export_and_training_refuse_declared_kinds(capsys, tmp_path):
    spec = write(tmp_path, "custom.yaml", SPEC)
    status, _, err = run_cli(capsys, spec, "--export", "torch")
    assert status == 2 and "layer 'g' (Gelu3)" in err and "user-declared layer" in err
    status, _, err = run_cli(capsys, spec, "--training")
    assert status == 2 and "user-declared layer" in err and "no backward rule" in err
    only_as = write(tmp_path, "as_only.yaml", """
        custom_layers:
          MyDense: {as: Dense, args: {units: width}}
        inputs: [{name: x, shape: [4]}]
        layers:
          - {type: MyDense, name: d, width: 8}
    """)
    status, _, err = run_cli(capsys, only_as, "--training")
    assert status == 0, err  # kind (a) trains as Dense does


def test_custom_layers_flag_is_for_model_files(capsys, tmp_path):
    spec = write(tmp_path, "custom.yaml", SPEC)
    status, _, err = run_cli(capsys, spec, "--custom-layers", spec)
    assert status == 2 and "--custom-layers" in err


# ---- bad declarations: exit 2, naming the file and the line ------------------------------------------------


@pytest.mark.parametrize(("text", "where", "fragment"), [
    ("MyDense: {as: Dense, args: {units: width}\n", "layers.yaml:2", ""),  # not valid YAML: the flow never closes
    ("Scale3: {elementwise: true, flops_per_element: 1}\nMyDense: {as: Dence, args: {units: width}}\n",
     "layers.yaml:2:", "unknown spec type 'Dence'"),
    ("MyDense:\n  fields: [width]\n  params: \"widht * features + width\"\n", "layers.yaml:3:", "widht"),
    ("MyDense:\n  fields: [width]\n  output_shape: [in_1, out_elements]\n", "layers.yaml:3:", "out_elements"),
    ("Scale3: {elementwise: true, flops_per_element: three}\n", "layers.yaml:1:", "flops_per_element"),
    ("MyDense:\n  fields: width\n", "layers.yaml:2:", "fields"),
    ("MyDense: {as: Dense, args: {unit: width}}\n", "layers.yaml:1:", "Dense has no field 'unit'"),
    ("Dense: {elementwise: true, flops_per_element: 1}\n", "layers.yaml:1:", "nnspec has"),
    ("MyDense: {elementwise: true, flops: 3}\n", "layers.yaml:1:", "unknown field 'flops'"),
])
def test_bad_declaration_file_exits_2(capsys, tmp_path, text, where, fragment):
    decl = tmp_path / "layers.yaml"
    decl.write_text(text, encoding="utf-8")
    model = write(tmp_path, "model.json", '{"class_name": "Sequential", "config": {"layers": []}}')
    status, out, err = run_cli(capsys, model, "--custom-layers", decl)
    assert status == 2 and out == ""
    assert where in err and fragment in err and "Traceback" not in err


def test_bad_declaration_in_a_spec_names_the_spec_line(capsys, tmp_path):
    spec = write(tmp_path, "bad.yaml", """
        custom_layers:
          Proj:
            fields: [units]
            params: "units * featurs"
        inputs: [{name: x, shape: [4]}]
        layers:
          - {type: Proj, units: 2}
    """)
    status, _, err = run_cli(capsys, spec)
    assert status == 2 and "bad.yaml:4:" in err and "featurs" in err


def test_unknown_field_of_a_declared_layer_in_a_spec(capsys, tmp_path):
    spec = write(tmp_path, "bad.yaml", """
        custom_layers:
          MyDense: {as: Dense, args: {units: width}}
        inputs: [{name: x, shape: [4]}]
        layers:
          - {type: MyDense, width: 8, depth: 2}
    """)
    status, _, err = run_cli(capsys, spec)
    assert status == 2 and "bad.yaml:5:" in err and "unknown field 'depth'" in err


def test_unknown_type_in_a_spec_says_how_to_declare_it(capsys, tmp_path):
    spec = write(tmp_path, "bad.yaml", """
        inputs: [{name: x, shape: [4]}]
        layers:
          - {type: MyOwnThing}
    """)
    status, _, err = run_cli(capsys, spec)
    assert status == 2 and "unknown layer type 'MyOwnThing'" in err and "custom_layers:" in err
