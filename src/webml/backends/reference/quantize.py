"""Reference kernels of the quantize operators (not implemented yet)."""
