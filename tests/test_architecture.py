"""Issue 15: the package's shape. No import circles in analyzer/ (every import statement counts: module level,
inside functions and under `if TYPE_CHECKING:` alike) and no file over 700 lines. Read with ast, not by
importing, so an import that only runs on some path is seen too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "analyzer"
MAX_LINES = 700


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str], root: Path) -> set[str]:
    """The analyzer modules `path` imports. `from package import name` is an edge to the submodule `name` when
    there is one, else to the package; the implicit import of a submodule's parent package is not an edge (a
    package's __init__ importing its children is how packages are built)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
                elif base in modules:
                    found.add(base)
    found.discard(name)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    paths = {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}
    return {name: imports_of(path, set(paths), package.parent) for name, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_analyzer_has_no_import_circles():
    graph = import_graph(PACKAGE)
    assert len(graph) > 100
    assert circles(graph) == []


def test_the_check_finds_a_circle_through_a_function_level_or_type_checking_import(tmp_path):
    package = tmp_path / "analyzer"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from analyzer.b import g\n")
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from analyzer import c\n")
    (package / "c.py").write_text("from analyzer.a import f\n")
    (package / "d.py").write_text("from . import a\n")
    graph = import_graph(package)
    assert circles(graph) == [["analyzer.a", "analyzer.b", "analyzer.c"]]
    assert graph["analyzer.d"] == {"analyzer.a"}


def test_no_file_in_analyzer_is_over_700_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
