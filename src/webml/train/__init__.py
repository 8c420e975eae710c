"""Training with WebNN itself: every step is a WebNN graph (autodiff, losses, optimizers)."""

from .autodiff import GradCall, grad
from .losses import mean_squared_error, one_hot, softmax_cross_entropy
from .optimizers import SGD, Adam, AdamW, Optimizer
from .trainer import Trainer, read_parameters

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "GradCall",
    "Optimizer",
    "Trainer",
    "grad",
    "mean_squared_error",
    "one_hot",
    "read_parameters",
    "softmax_cross_entropy",
]
