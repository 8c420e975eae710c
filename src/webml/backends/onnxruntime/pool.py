"""ONNX lowerings of the pool operators."""
