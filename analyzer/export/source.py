"""Write a standalone, readable Python file that builds the model: Keras 3 or PyTorch.

The file needs only its framework (not nnspec). It is printed from the same builder
descriptions that `to_keras` / `to_torch` instantiate; the torch file carries the
layer classes it uses, copied from the package analyzer/layers/torch_modules/.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from analyzer.export.plan import ExportPlan
from analyzer.layers.builders import KERAS_BUILDERS, TORCH_BUILDERS, Construct, Ref

TORCH_MODULES_DIR = Path(__file__).parent.parent / "layers" / "torch_modules"
TORCH_MODULES_PACKAGE = "analyzer.layers.torch_modules"
LINE = 110


def literal(value: Any, prefix: str = "", indent: str = "") -> str:
    """`value` as Python source; a Construct (a wrapper's layer) as a call, `prefix` before its class."""
    if isinstance(value, Ref):
        return value.text
    if isinstance(value, Construct):
        return constructor(prefix if not value.cls.startswith("nn.") else "", value, indent)
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def nested(construct: Construct) -> list[Construct]:
    """`construct` and the constructs among its arguments (the layers a wrapper holds), depth first."""
    out = [construct]
    for value in construct.kwargs.values():
        if isinstance(value, Construct):
            out.extend(nested(value))
    return out


def call(func: str, args: list[str], indent: str) -> str:
    """`func(a, b)` on one line, or one argument a line when that is too long."""
    one_line = f"{func}({', '.join(args)})"
    if len(indent) + len(one_line) <= LINE or not args:
        return one_line
    inner = indent + "    "
    return f"{func}(\n" + "".join(f"{inner}{a},\n" for a in args) + f"{indent})"


def constructor(prefix: str, construct: Construct, indent: str, extra: dict[str, Any] | None = None) -> str:
    kwargs = {k: v for k, v in construct.kwargs.items() if v is not None}
    kwargs.update(extra or {})
    inner = indent + "    "
    return call(prefix + construct.cls, [f"{k}={literal(v, prefix, inner)}" for k, v in kwargs.items()], indent)


def _header(plan: ExportPlan, framework: str, key: str, names: str, native_gru: bool = False) -> str:
    shapes = "\n".join(f"  {x.name}: (batch, {', '.join(map(str, x.shape))})" for x in plan.inputs)
    source = Path(plan.file).as_posix()
    return (
        f'"""{plan.name} as a {framework} model, written by nnspec from {source} at {plan.describe_sizes()}.\n\n'
        f"Inputs are channels-last with the batch axis first, as in Keras:\n{shapes}\n"
        f"{names}\nRegenerate with: analyze {source} --export {key}"
        + "".join(f" --set {k}={v}" for k, v in plan.symbols.items())
        + (f" --bias {plan.bias}" if plan.bias != "spec" else "")
        + (" --native-gru" if native_gru else "")
        + '\n"""\n'
    )


def keras_source(plan: ExportPlan) -> str:
    constructs = [(layer, KERAS_BUILDERS.build(layer)) for layer in plan.layers]
    uses_ops = any(isinstance(v, Ref) and v.text.startswith("ops.")
                   for _, c in constructs for n in nested(c) for v in n.kwargs.values())
    attrs = plan.attrs
    lines = [
        _header(plan, "Keras 3", "keras", "Layer names are the spec's, with '.' and '/' written '_' (Keras refuses them)."),
        "import os",
        "",
        'os.environ.setdefault("KERAS_BACKEND", "torch")  # any Keras 3 backend works; torch needs no TensorFlow',
        "",
        "import keras  # noqa: E402",
        f"from keras import {'layers, ops' if uses_ops else 'layers'}  # noqa: E402",
        "",
        "",
        "def build():",
        f'    """{plan.name} at {plan.describe_sizes()}."""',
    ]
    for x in plan.inputs:
        lines.append(f"    {x.attr} = keras.Input(shape={literal(x.shape)}, name={x.keras_name!r})")
    for layer, construct in constructs:
        extra: dict[str, Any] = {} if layer.spec.trainable else {"trainable": False}
        extra["name"] = layer.keras_name
        make = constructor("layers.", construct, "    ", extra)
        args = [attrs[s] for s in layer.inputs]
        listed = ", ".join(args) if construct.call == "args" else f"[{', '.join(args)}]"
        operand = listed if layer.multi_input else args[0]
        if layer.initial_state:
            operand = f"{args[0]}, initial_state=[{', '.join(args[1:])}]"
        lines.append(f"    {', '.join(layer.output_attrs or (layer.attr,))} = {make}({operand})")
    ins = [x.attr for x in plan.inputs]
    outs = [attrs[o] for o in plan.outputs]
    inputs = ins[0] if len(ins) == 1 else f"[{', '.join(ins)}]"
    outputs = outs[0] if len(outs) == 1 else f"[{', '.join(outs)}]"
    model_name = plan.name.replace("/", "_")
    lines += [
        f"    return keras.Model(inputs={inputs}, outputs={outputs}, name={model_name!r})",
        "",
        "",
        'if __name__ == "__main__":',
        "    build().summary()",
        "",
    ]
    return "\n".join(lines)


def torch_source(plan: ExportPlan) -> str:
    constructs = [(layer, TORCH_BUILDERS.build(layer)) for layer in plan.layers]
    used = {n.cls for _, c in constructs for n in nested(c) if not n.cls.startswith("nn.")}
    attrs = plan.attrs
    name = plan.class_name
    native = bool(plan.layers and plan.layers[0].options.get("native_gru"))
    names = "Attributes are the spec's layer names (characters other than letters, digits and _ written _)."
    lines = [_header(plan, "PyTorch", "torch", names, native), torch_modules_source(used), "", "", f"class {name}(nn.Module):",
             f'    """{plan.name} at {plan.describe_sizes()}: one attribute per spec layer, forward in graph order."""',
             "", "    def __init__(self):", "        super().__init__()"]
    for layer, construct in constructs:
        make = constructor("", construct, "        ")
        if not layer.spec.trainable:
            make += ".requires_grad_(False)"
        lines.append(f"        self.{layer.attr} = {make}")
    ins = [x.attr for x in plan.inputs]
    lines += ["", f"    def forward(self, {', '.join(ins)}):"]
    for layer in plan.layers:
        targets = ", ".join(layer.output_attrs or (layer.attr,))
        lines.append(f"        {targets} = self.{layer.attr}({', '.join(layer.input_attrs)})")
    outs = [attrs[o] for o in plan.outputs]
    lines.append(f"        return {', '.join(outs)}")
    shapes = ", ".join(f"{x.attr!r}: {literal(x.shape)}" for x in plan.inputs)
    lines += [
        "",
        "",
        f"INPUT_SHAPES = {{{shapes}}}  # without the batch axis",
        "",
        "",
        "def build():",
        '    """The model in inference mode (dropout off, batch normalization on its moving statistics)."""',
        f"    return {name}().eval()",
        "",
        "",
        'if __name__ == "__main__":',
        "    model = build()",
        "    print(model)",
        "    with torch.no_grad():",
        "        outputs = model(*(torch.randn(1, *shape) for shape in INPUT_SHAPES.values()))",
        "    for output in outputs if isinstance(outputs, tuple) else (outputs,):",
        '        print("output shape:", tuple(output.shape))',
        '    print("parameters:", sum(p.numel() for p in model.parameters()))',
        "",
    ]
    return "\n".join(lines)


def torch_modules_files() -> list[Path]:
    """The files of analyzer/layers/torch_modules/ in the order they are pasted: common.py (the helpers), then
    the family modules by name (__init__.py only imports them)."""
    families = sorted(p for p in TORCH_MODULES_DIR.glob("*.py") if p.name not in ("__init__.py", "common.py"))
    return [TORCH_MODULES_DIR / "common.py", *families]


def torch_modules_source(classes: set[str]) -> str:
    """The files of analyzer/layers/torch_modules/ as one standalone file: each import once (the package's own
    imports dropped, as everything is pasted together), without the docstrings and without the classes (and
    helpers) not needed."""
    imports: list[str] = []
    body: list[tuple[ast.stmt, list[str]]] = []  # each file's statements, with its lines
    for path in torch_modules_files():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        lines = text.splitlines()
        for node in tree.body[1:] if ast.get_docstring(tree) is not None else tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if _own_import(node, path):
                    continue
                statement = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                if statement not in imports:
                    imports.append(statement)
            else:
                body.append((node, lines))
    defined: dict[str, ast.stmt] = {}
    for node, _ in body:
        for n in _defined_names(node):
            if n in defined:
                raise RuntimeError(f"{n} is defined twice in {TORCH_MODULES_PACKAGE}")
            defined[n] = node
    needed: set[str] = set()
    stack = [c for c in classes if c in defined]
    unknown = classes - set(defined)
    if unknown:
        raise RuntimeError(f"torch builders use classes missing from the package {TORCH_MODULES_PACKAGE}: {sorted(unknown)}")
    while stack:
        n = stack.pop()
        if n in needed:
            continue
        needed.add(n)
        stack.extend(r for r in _referenced_names(defined[n]) if r in defined and r not in needed)
    kept = list(imports)
    for node, lines in body:
        names = _defined_names(node)
        if names and not (names & needed):
            continue
        start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        # keep the comment lines right above a statement
        while start > 1 and lines[start - 2].startswith("#"):
            start -= 1
        kept.append("\n".join(lines[start - 1 : node.end_lineno]))
    out: list[str] = []
    for i, chunk in enumerate(kept):
        if i:
            first = chunk.lstrip().split(" ", 1)[0]
            prev_first = kept[i - 1].lstrip().split(" ", 1)[0]
            both_imports = first in ("import", "from") and prev_first in ("import", "from")
            blocks = first in ("def", "class", "@") or prev_first in ("def", "class", "@")
            out.append("\n" if both_imports else ("\n\n\n" if blocks else "\n\n"))
        out.append(chunk)
    return "".join(out)


def _own_import(node: ast.Import | ast.ImportFrom, path: Path) -> bool:
    """An import of the package itself (dropped: its names are pasted into the same file). Any other import
    of nnspec would make the written file depend on it: refused."""
    modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level:
        return True
    if all(m == TORCH_MODULES_PACKAGE or m.startswith(TORCH_MODULES_PACKAGE + ".") for m in modules):
        return True
    if any(m == "analyzer" or m.startswith("analyzer.") for m in modules):
        raise RuntimeError(f"{path.name} of {TORCH_MODULES_PACKAGE} imports {', '.join(modules)}: "
                           "the written torch file must not need nnspec")
    return False


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    return set()  # imports and bare statements are always kept


def _referenced_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
