"""Networks built with MLGraphBuilder."""
