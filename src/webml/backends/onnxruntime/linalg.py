"""ONNX lowerings of the linalg operators."""
