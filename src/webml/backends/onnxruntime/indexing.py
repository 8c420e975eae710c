"""ONNX lowerings of the indexing operators."""
