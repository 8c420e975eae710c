"""Reference kernels of the pool operators (not implemented yet)."""
