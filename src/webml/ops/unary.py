"""unary operators."""
