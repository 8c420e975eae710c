"""ONNX lowerings of the unary operators."""
