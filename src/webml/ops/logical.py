"""logical operators."""
