"""Reference kernels of the logical operators."""
