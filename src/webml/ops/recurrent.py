"""recurrent operators (not implemented yet)."""
