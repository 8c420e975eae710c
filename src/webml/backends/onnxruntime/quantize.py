"""ONNX lowerings of the quantize operators."""
