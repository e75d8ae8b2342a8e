"""Import Keras and ONNX models as nnspec specs, and lift them to symbolic ones.

    from analyzer.importers import import_model
    model = import_model("pet.keras", symbols=["L=input1:1,input2:0,input3:0"])
    model.yaml            # the converted spec (text), one line per layer
    model.report          # its analysis: formulas in L
    model.findings        # hard-coded sizes that stop matching once L varies (and what they became)

Keras files (.keras, .json, .h5) are read as JSON (keras_config.py): no framework needed. A .json whose top
level has `model_type` is a Hugging Face config.json instead (hf_config.py), also read with no framework.
ONNX files (.onnx) need the optional `onnx` package (analyzer/importers/onnx/, `pip install 'nnspec[onnx]'`),
imported only when an ONNX file is read. Nothing here imports keras, torch or onnx at import time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from analyzer.errors import UsageError
from analyzer.graph import analyze_spec
from analyzer.importers.document import ModelImportError, SpecDocument
from analyzer.importers.lift import Finding, OtherSize, bind_symbols, check_other_sizes, fit_other_sizes, lift, size_hints
from analyzer.importers.symbols import DEFAULT_DYNAMIC_SIZE, ImportOptions, SymbolBinding, parse_symbol_option
from analyzer.report import Report
from analyzer.spec.loader import Spec, parse_spec

if TYPE_CHECKING:
    from analyzer.spec.custom_layers import CustomLayers

KERAS_EXTENSIONS = (".keras", ".json", ".h5", ".hdf5")
ONNX_EXTENSIONS = (".onnx",)
MODEL_EXTENSIONS = KERAS_EXTENSIONS + ONNX_EXTENSIONS

__all__ = ["DEFAULT_DYNAMIC_SIZE", "MODEL_EXTENSIONS", "Finding", "ImportedModel", "ModelImportError", "SpecDocument",
           "SymbolBinding", "import_model", "is_model_file", "parse_symbol_option"]


def is_model_file(path: str | Path) -> bool:
    """Whether `path` names a model file (by its extension) rather than a spec."""
    return Path(str(path)).suffix.lower() in MODEL_EXTENSIONS


@dataclass
class ImportedModel:
    source: str
    document: SpecDocument
    spec: Spec
    analyzed: Report | None  # the report, when the import needed it; else made on first use
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @cached_property
    def report(self) -> Report:
        """The spec's report at the symbols' defaults (the model's own sizes)."""
        return self.analyzed if self.analyzed is not None else analyze_spec(self.spec)

    @property
    def yaml(self) -> str:
        return self.document.to_yaml()

    def messages(self) -> list[str]:
        """What the user should read: notes, then each finding."""
        return [f"note: {n}" for n in self.notes] + [
            ("lifted: " if f.rewritten else "warning: ") + str(f) for f in self.findings]


def import_model(path: str | Path, symbols: Iterable[str | SymbolBinding] = (),
                 values: Mapping[str, int] | None = None,
                 other_sizes: Iterable[str | Path] = (), custom_layers: str | Path | None = None) -> ImportedModel:
    """Read a Keras or ONNX model file as a spec; `symbols` are --symbol bindings (`"L=input1:1"`),
    `values` defaults for the model's open dimensions (`{"L": 1024}`), `other_sizes` the same model
    saved at other sizes of the symbols (--other-size): every size that differs between the files is
    fitted as an affine function of the symbols (lift.fit_other_sizes); `custom_layers` a --custom-layers file
    declaring the model's own layer classes (analyzer/spec/custom_layers.py)."""
    bindings = [s if isinstance(s, SymbolBinding) else parse_symbol_option(s) for s in symbols]
    options = ImportOptions(bindings, dict(values or {}))
    source = str(path)
    other_files = [str(p) for p in other_sizes]
    from analyzer.importers.hf_config import hf_config_of, import_hf_config  # a .json with `model_type`

    hf_config = hf_config_of(source)
    custom = None
    if custom_layers is not None:
        from analyzer.spec.custom_layers import load_custom_layers

        custom = load_custom_layers(str(custom_layers))
        if Path(source).suffix.lower() not in KERAS_EXTENSIONS or hf_config is not None:
            raise UsageError("--custom-layers declares a Keras model's own layer classes (.keras, .json, .h5)")
    if hf_config is not None:
        if bindings or other_files:
            raise UsageError("--symbol and --other-size are for Keras / ONNX models; a Hugging Face config.json "
                             "declares its symbols (T, N, d_model, I, h, kv, V): set them with --set")
        document, spec, report, notes = import_hf_config(hf_config, source, options.values)
        return ImportedModel(source, document, spec, report, [], notes)
    if other_files and not bindings:
        raise UsageError("--other-size needs --symbol: name the input dimensions that differ between the files, "
                         "e.g. --symbol L=input1:1")
    document, notes = _read_document(source, options, custom)
    others = [OtherSize(file, _read_document(file, options, custom)[0]) for file in other_files]
    bind_symbols(document, options, notes)
    for name in options.values:
        if not any(s.name == name for s in document.symbols):
            declared = ", ".join(s.name for s in document.symbols) or "none"
            raise ModelImportError(f"--set {name}: the imported model has no symbol '{name}' (symbols: {declared})",
                                   hint="name an input dimension first: --symbol NAME=INPUT:AXIS")
    fitted: list[Finding] = []
    if others:
        points, fitted = fit_other_sizes(document, others)
    spec, report, findings = lift(document, f"{source} [converted]")
    findings = fitted + findings
    if others:
        check_other_sizes(document, others, points)
    else:
        hints = size_hints(report, document, {b.name for b in bindings})
        notes.extend(f"might follow a symbol: {h}" for h in hints)
        if hints:
            document.header.append("Sizes that might follow the symbols (lift with --other-size to know):")
            document.header.extend(f"  {h}" for h in hints)
    changed = False
    for symbol in document.symbols:  # --set values become the defaults once the sizes are lifted
        if symbol.name in options.values and symbol.default != options.values[symbol.name]:
            symbol.default = options.values[symbol.name]
            changed = True
    if changed:
        spec = parse_spec(document.to_yaml(), f"{source} [converted]")
        report = analyze_spec(spec)
    if findings:
        document.header.append("Sizes that stop matching once the symbols vary:" if not others else
                               "Sizes lifted from the files at other sizes, and sizes that stop matching:")
        document.header.extend(f"  {'lifted' if f.rewritten else 'CHECK'}: {f}" for f in findings)
    return ImportedModel(source, document, spec, report, findings, notes)


def _read_document(source: str, options: ImportOptions, custom: CustomLayers | None = None) -> tuple[SpecDocument, list[str]]:
    """A model file converted to a spec document (not yet lifted), and notes for the user."""
    suffix = Path(source).suffix.lower()
    if suffix in KERAS_EXTENSIONS:
        from analyzer.importers.keras_config import keras_document, read_keras_config

        return keras_document(read_keras_config(source), source, options, custom)
    if suffix in ONNX_EXTENSIONS:
        from analyzer.importers.onnx import onnx_document

        return onnx_document(source, options)
    raise ModelImportError(f"{source}: not a model file (known extensions: {', '.join(MODEL_EXTENSIONS)})")
