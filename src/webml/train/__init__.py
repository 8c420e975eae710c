"""Training with WebNN itself: every step is a WebNN graph (autodiff, losses, optimizers)."""

from .autodiff import GradCall, grad

__all__ = ["GradCall", "grad"]
