"""Reference kernels of the normalization operators (not implemented yet)."""
