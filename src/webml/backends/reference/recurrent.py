"""Reference kernels of the recurrent operators (not implemented yet)."""
