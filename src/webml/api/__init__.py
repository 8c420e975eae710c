"""The WebIDL surface: ML, MLContext, MLGraphBuilder, MLOperand, MLGraph, MLTensor."""

from .builder import MLGraphBuilder
from .context import MLContext
from .graph import MLGraph
from .ml import ML, ml
from .operand import MLOperand
from .tensor import MLTensor

__all__ = ["ML", "MLContext", "MLGraph", "MLGraphBuilder", "MLOperand", "MLTensor", "ml"]
