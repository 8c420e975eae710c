"""resample operators (not implemented yet)."""
