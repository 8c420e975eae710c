"""ONNX lowerings of the normalization operators."""
