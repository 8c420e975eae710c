"""conv operators (not implemented yet)."""
