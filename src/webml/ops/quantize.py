"""quantize operators (not implemented yet)."""
