"""ONNX lowerings of the shape operators."""
