"""Reference kernels of the reduce operators (not implemented yet)."""
