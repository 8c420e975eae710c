"""ONNX lowerings of the conv operators."""
