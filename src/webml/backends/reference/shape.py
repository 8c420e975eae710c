"""Reference kernels of the shape operators."""
