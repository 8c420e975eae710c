"""Reference kernels of the unary operators."""
