"""ONNX lowerings of the activation operators."""
