"""Reference kernels of the resample operators (not implemented yet)."""
