"""nnspec: exact, symbolic params / MACs / FLOPs of neural networks written as YAML specs."""

from analyzer.api import analyze
from analyzer.errors import NNSpecError
from analyzer.report import NOTEBOOK_RENDERERS, Counts, LayerRow, Report


def _to_html(report: Report) -> str:
    """Report._repr_html_: analyzer.formats.notebook is imported at the first display, not with
    `import analyzer` (cold start, issue 9: tests/test_cli_imports.py)."""
    from analyzer.formats.notebook import to_html

    return to_html(report)


def _to_latex(report: Report) -> str:
    """Report._repr_latex_, as _to_html."""
    from analyzer.formats.notebook import to_latex

    return to_latex(report)


NOTEBOOK_RENDERERS.update(html=_to_html, latex=_to_latex)

__all__ = ["Counts", "LayerRow", "NNSpecError", "Report", "analyze"]
__version__ = "0.1.0"
