"""ONNX lowerings of the resample operators."""
