"""Reference kernels of the indexing operators."""
