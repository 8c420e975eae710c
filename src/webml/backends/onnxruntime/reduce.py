"""ONNX lowerings of the reduce operators."""
