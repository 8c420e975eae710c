"""reduce operators (not implemented yet)."""
