"""Importers against real frameworks (make crosscheck: keras, torch==2.13.0, onnx).

* Round trips: every spec at every cross-check size (sizes.yaml) is exported (analyzer.export),
  saved by the framework (Keras: .keras and to_json(); torch: ONNX), imported and analyzed: the
  params equal what the framework counts (Keras count_params(); torch parameters + batch-norm
  running statistics) and the MACs equal the spec's (which test_specs.py checks against
  FlopCounterMode).
* Lifting: each spec exported once, at its first cross-check size (ONNX with dynamic axes for
  the symbols that are input dimensions; Keras with those dimensions named by --symbol), gives
  the spec's own formulas at three sizes.
* keras.applications (weights=None) saved as .keras, lifted with the image size as a symbol,
  give the formulas of specs/vgg16.yaml, resnet50.yaml and mobilenet_v2.yaml.
* Native PyTorch (NCHW) models exported to ONNX: params and FlopCounterMode MACs at three sizes.

torch.onnx notes: the TorchScript exporter (dynamo=False) folds BatchNormalization into the
preceding Conv in eval mode, so the exports use training=TrainingMode.PRESERVE. (It writes
movedim(-1, 1) as a Transpose with the invalid perm [0, -1, 1]: the torch export moves axes by
non-negative dims.)
"""

from __future__ import annotations

import math
import os
import warnings

import pytest
import sympy

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from crosscheck_harness import ROOT, all_cases, case_id, load_sizes  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from analyzer import analyze  # noqa: E402
from analyzer.export import ExportError, to_keras, to_torch  # noqa: E402
from analyzer.importers import ModelImportError, import_model  # noqa: E402
from analyzer.spec.loader import load_spec  # noqa: E402

CASES = [c for c in all_cases() if c[1] is not None]
SPECS = sorted({path for path, _ in CASES})

# Known limits, each checked to still fail (strict xfail), so that a fix shows.
# Hard-coded sizes that still fit once lifted, so lifting one file cannot see them (docs/importers.md). The
# Keras lift gives a second file per symbol (--other-size), which fits them; the ONNX lift reads one file.
LIFT_LIMITS = {
    "tests/crosscheck/specs/zoo_rnn.yaml": "RepeatVector(n=T) is RepeatVector(3) in the file",
}
# The ONNX file computes another function than the torch model. None left: the torch export's 'same' pads
# (torch_modules.same_padding) are written so that torch.onnx traces them right at every size.
EXPORT_LIMITS: dict[str, str] = {}


def limited(items, limits, key=lambda item: item):
    return [pytest.param(*(item if isinstance(item, tuple) else (item,)),
                         marks=pytest.mark.xfail(reason=limits[key(item)], strict=True)) if key(item) in limits
            else item for item in items]
FIXTURES = ROOT / "tests" / "fixtures" / "keras"


def export_onnx(model, args, path, names, dynamic_axes=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, tuple(args), str(path), dynamo=False, input_names=names,
                              dynamic_axes=dynamic_axes, training=torch.onnx.TrainingMode.PRESERVE)
        except torch.onnx.errors.UnsupportedOperatorError as error:  # nn.RMSNorm: aten::rms_norm
            pytest.skip(f"torch.onnx cannot export the model: {error}")


def torch_params(model) -> int:
    """What torch holds: parameters plus batch-norm running statistics (Keras' non-trainable params)."""
    buffers = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    return sum(p.numel() for p in model.parameters()) + buffers


def flop_counter_macs(model, args) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*args)
    return counter.get_total_flops() // 2


def totals(report, **values):
    if values:
        report = report.at(**values)
    total = report.total
    return report.value(total.params), report.value(total.macs)


def skip_unsupported(error: Exception, what: str) -> None:
    assert isinstance(error, (ExportError, ModelImportError)), error
    pytest.skip(f"{what}: {error}")


def torch_inputs(spec_path, values):
    spec = load_spec(ROOT / spec_path)
    report = analyze(ROOT / spec_path).at(**values)
    args = []
    for x in spec.inputs:
        shape = tuple(report.value(d) for d in x.shape)
        feeds_embedding = any(e.type in ("Embedding", "ReversibleEmbedding")
                              and x.name in (e.spec.inputs or [spec.layers[0].name]) for e in spec.layers)
        args.append(torch.randint(0, 2, (1, *shape)).float() if feeds_embedding else torch.randn(1, *shape))
    return spec, args


# ---- round trips at every cross-check size ---------------------------------------------------


@pytest.mark.parametrize(("path", "values"), CASES, ids=[case_id(c) for c in CASES])
def test_keras_round_trip(path, values, tmp_path):
    try:
        model = to_keras(ROOT / path, **values)
    except ExportError as error:
        skip_unsupported(error, "not exportable to Keras")
    spec_params, spec_macs = totals(analyze(ROOT / path), **values)
    keras_params = model.count_params()
    model.save(tmp_path / "model.keras")
    (tmp_path / "model.json").write_text(model.to_json())
    for file in ("model.keras", "model.json"):
        try:
            imported = import_model(tmp_path / file)
        except ModelImportError as error:
            skip_unsupported(error, "not importable")
        params, macs = totals(imported.report)
        assert params == keras_params, f"{file}: params {params} vs Keras count_params() {keras_params}"
        assert macs == spec_macs, f"{file}: MACs {macs} vs the spec's {spec_macs}"
    # Keras 3 has no second LSTM bias (cudnn_compatible): the only way the spec may count more
    assert spec_params >= keras_params


@pytest.mark.parametrize(("path", "values"), limited(CASES, EXPORT_LIMITS, case_id), ids=[case_id(c) for c in CASES])
def test_onnx_round_trip(path, values, tmp_path):
    try:
        model = to_torch(ROOT / path, native_gru=True, **values)
    except ExportError as error:
        skip_unsupported(error, "not exportable to torch")
    spec, args = torch_inputs(path, values)
    names = [x.name.replace(".", "_") for x in spec.inputs]
    export_onnx(model, args, tmp_path / "model.onnx", names)
    try:
        imported = import_model(tmp_path / "model.onnx")
    except ModelImportError as error:
        skip_unsupported(error, "not importable from ONNX")
    params, macs = totals(imported.report)
    assert params == torch_params(model)
    assert macs == totals(analyze(ROOT / path), **values)[1]
    assert macs == flop_counter_macs(model, args)


# ---- lifting: one export, the spec's formulas at three sizes --------------------------------


def input_symbols(spec_path):
    """{symbol: [(input, axis), ...]} for the symbols that are whole input dimensions."""
    spec = load_spec(ROOT / spec_path)
    found: dict[str, list[tuple[str, int]]] = {}
    for x in spec.inputs:
        for axis, dim in enumerate(x.shape):
            if isinstance(dim, sympy.Symbol):
                found.setdefault(dim.name, []).append((x.name, axis))
    return spec, found


def lift_sizes(base: int) -> list[int]:
    """The export size and two larger ones with the same remainders modulo 64 (a model exported from
    torch may have paddings computed from the size it was traced at)."""
    return [base, base + 64, base + 128]


@pytest.mark.parametrize("path", SPECS)
def test_keras_lift(path, tmp_path):
    spec, symbols = input_symbols(path)
    if not symbols:
        pytest.skip("no symbol is an input dimension")
    base = all_cases_of(path)[0]
    try:
        model = to_keras(ROOT / path, **base)
    except ExportError as error:
        skip_unsupported(error, "not exportable to Keras")
    (tmp_path / "model.json").write_text(model.to_json())
    # the same model saved once more per symbol, that symbol at its second lift size (one symbol at a
    # time, so that every symbol's part of a size is told apart): the sizes that differ are fitted
    other_sizes = []
    for symbol in symbols:
        other_sizes.append(tmp_path / f"model_{symbol}.json")
        other = to_keras(ROOT / path, **dict(base, **{symbol: lift_sizes(base[symbol])[1]}))
        other_sizes[-1].write_text(other.to_json())
    keras_inputs = {x.name: model.inputs[i].name.split(":")[0] for i, x in enumerate(spec.inputs)}
    bindings = [f"{name}=" + ",".join(f"{keras_inputs[i]}:{a}" for i, a in dims) for name, dims in symbols.items()]
    try:
        imported = import_model(tmp_path / "model.json", bindings, other_sizes=other_sizes)
    except ModelImportError as error:
        skip_unsupported(error, "not importable")
    reference = analyze(ROOT / path)
    # params nnspec counts that no Keras 3 layer has (cudnn_compatible's second bias), measured on the
    # exported model; they do not depend on the sizes
    gap = totals(reference, **base)[0] - model.count_params()
    for i in range(3):
        values = dict(base)
        values.update({s: lift_sizes(base[s])[i] for s in symbols})
        params, macs = totals(imported.report, **{s: values[s] for s in symbols})
        spec_params, spec_macs = totals(reference, **values)
        assert (params, macs) == (spec_params - gap, spec_macs), values


@pytest.mark.parametrize("path", limited(SPECS, LIFT_LIMITS))
def test_onnx_lift(path, tmp_path):
    spec, symbols = input_symbols(path)
    if not symbols:
        pytest.skip("no symbol is an input dimension")
    base = all_cases_of(path)[0]
    try:
        model = to_torch(ROOT / path, native_gru=True, **base)
    except ExportError as error:
        skip_unsupported(error, "not exportable to torch")
    spec, args = torch_inputs(path, base)
    names = [x.name.replace(".", "_") for x in spec.inputs]
    dynamic = {n: {0: "batch"} for n in names}
    for symbol, dims in symbols.items():
        for input_name, axis in dims:
            dynamic[names[[x.name for x in spec.inputs].index(input_name)]][axis + 1] = symbol
    export_onnx(model, args, tmp_path / "model.onnx", names, dynamic)
    try:
        imported = import_model(tmp_path / "model.onnx", values={s: base[s] for s in symbols})
    except ModelImportError as error:
        skip_unsupported(error, "not importable from ONNX")
    reference = analyze(ROOT / path)
    for i in range(3):
        values = dict(base)
        values.update({s: lift_sizes(base[s])[i] for s in symbols})
        lifted = {s: values[s] for s in symbols}
        params, macs = totals(imported.report, **lifted)
        assert macs == totals(reference, **values)[1], values
        # params: the spec's, except nn.GRU's second bias vector for a reset_after=False GRU
        gap = sum(3 * row.spec.units for row in reference.layers.values()
                  if row.type == "GRU" and not row.spec.reset_after and not row.spec.cudnn_compatible)
        assert params == reference.at(**values).value(reference.total.params + gap), values


def all_cases_of(path):
    from crosscheck_harness import cases_of

    return cases_of(load_sizes()[path])


# ---- the founding models' Keras files --------------------------------------------------------


def founding_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_keras3", FIXTURES / "make_keras3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("builder", "symbol", "spec_file"), [
    ("scnn", "L=input_1:1", "specs/scnn.yaml"),
    ("pet_cgdnn", "L=input1:1,input2:0,input3:0", "specs/pet_cgdnn.yaml"),
])
@pytest.mark.parametrize("extension", [".keras", ".json", ".h5"])
def test_founding_keras_files_lift_to_the_founding_formulas(builder, symbol, spec_file, extension, tmp_path):
    model = getattr(founding_models(), builder)()
    path = tmp_path / f"model{extension}"
    if extension == ".json":
        path.write_text(model.to_json())
    else:
        model.save(path)
    imported = import_model(path, [symbol])
    classes = sympy.Symbol("classes", integer=True, positive=True)
    reference = analyze(ROOT / spec_file).total
    for quantity in ("params", "macs", "flops"):
        ours = getattr(imported.report.total, quantity)
        theirs = getattr(reference, quantity).subs(classes, 11)
        assert sympy.expand(ours - theirs) == 0, quantity
    assert imported.report.value(imported.report.total.params) == model.count_params()


def test_committed_fixtures_are_what_keras_writes(tmp_path):
    module = founding_models()
    for file, builder in (("scnn_keras3.json", "scnn"), ("pet_cgdnn_keras3.json", "pet_cgdnn"),
                          ("small_sequential_keras3.json", "small_sequential")):
        import json

        assert json.loads((FIXTURES / file).read_text())["config"]["layers"].__len__() == len(
            json.loads(getattr(module, builder)().to_json())["config"]["layers"])


# ---- keras.applications -----------------------------------------------------------------------


@pytest.mark.parametrize(("application", "spec_file", "sizes"), [
    ("VGG16", "specs/vgg16.yaml", [64, 128, 224]),
    ("ResNet50", "specs/resnet50.yaml", [64, 128, 224]),
    ("MobileNetV2", "specs/mobilenet_v2.yaml", [96, 160, 224]),  # multiples of 32: correct_pad as at 224
])
def test_keras_applications_lift_to_the_specs(application, spec_file, sizes, tmp_path):
    keras.backend.clear_session()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(keras.applications, application)(weights=None, input_shape=(224, 224, 3))
    path = tmp_path / "model.keras"
    model.save(path)
    input_name = model.layers[0].name
    imported = import_model(path, [f"S={input_name}:0,{input_name}:1"])
    assert imported.report.value(imported.report.total.params) == model.count_params()
    reference = analyze(ROOT / spec_file)
    for size in sizes:
        assert totals(imported.report, S=size) == totals(reference, S=size, classes=1000), size


# ---- native PyTorch models (NCHW) -------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.c1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(channels)
        self.c2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))


class ImageNet(nn.Module):
    """Strided conv, max pool, a residual block, a transposed conv, GELU, average pool, mean, LayerNorm."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 7, stride=2, padding=3)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.block = Block(16)
        self.down = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(32, 8, 4, stride=2, padding=1)
        self.avg = nn.AvgPool2d(2)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.block(self.pool(torch.relu(self.stem(x))))
        x = nn.functional.gelu(self.up(self.down(x)))
        return self.fc(self.norm(self.avg(x).mean((2, 3))))


class SequenceNet(nn.Module):
    """Embedding, Conv1d, LSTM (last state), Linear."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 16)
        self.conv = nn.Conv1d(16, 32, 5)
        self.lstm = nn.LSTM(32, 24, batch_first=True)
        self.gru = nn.GRU(24, 12, batch_first=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, ids):
        x = torch.tanh(self.conv(self.emb(ids).transpose(1, 2))).transpose(1, 2)
        out, _ = self.lstm(x)
        out, _ = self.gru(out)
        return torch.sigmoid(self.fc(out[:, -1]))


@pytest.mark.parametrize(("net", "shape", "dynamic", "sizes"), [
    (ImageNet, (3, 64, 64), {2: "H", 3: "W"}, [(64, 64), (97, 131), (224, 160)]),
    (SequenceNet, (40,), {1: "T"}, [(40,), (77,), (1000,)]),
])
def test_native_torch_models(net, shape, dynamic, sizes, tmp_path):
    torch.manual_seed(0)
    model = net().eval()
    example = torch.randint(0, 100, (1, *shape)) if net is SequenceNet else torch.randn(1, *shape)
    export_onnx(model, [example], tmp_path / "model.onnx", ["x"], {"x": {0: "N", **dynamic}})
    imported = import_model(tmp_path / "model.onnx")
    names = list(dynamic.values())
    for size in sizes:
        args = [torch.randint(0, 100, (1, *size)) if net is SequenceNet else torch.randn(1, shape[0], *size)]
        params, macs = totals(imported.report, **dict(zip(names, size, strict=False)))
        assert params == torch_params(model)
        uncounted = 0
        if net is SequenceNet:  # FlopCounterMode (torch 2.13, CPU) counts nn.GRU but not nn.LSTM: by hand,
            steps = size[0] - 4  # after the 5-wide valid Conv1d: T - 4 steps of 4 gates x 24 units x (32 + 24)
            uncounted = steps * 4 * 24 * (32 + 24)
        assert macs == flop_counter_macs(model, args) + uncounted, size
    with torch.no_grad():
        assert math.isfinite(float(model(example).sum()))
