"""Reference kernels of the activation operators."""
