"""ONNX lowerings of the recurrent operators."""
