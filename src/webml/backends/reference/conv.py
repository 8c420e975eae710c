"""Reference kernels of the conv operators (not implemented yet)."""
