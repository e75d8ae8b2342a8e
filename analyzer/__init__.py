"""nnspec: exact, symbolic params / MACs / FLOPs of neural networks written as YAML specs."""

from analyzer.api import analyze
from analyzer.errors import NNSpecError
from analyzer.report import Counts, LayerRow, Report

__all__ = ["Counts", "LayerRow", "NNSpecError", "Report", "analyze"]
__version__ = "0.1.0"
