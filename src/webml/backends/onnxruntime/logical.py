"""ONNX lowerings of the logical operators."""
