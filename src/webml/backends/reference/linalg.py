"""Reference kernels of the linalg operators."""
