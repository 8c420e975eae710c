"""EfficientNet-Lite0 written with MLGraphBuilder.

The network (Tan & Le 2019, the "lite" variant for mobile accelerators): a
3x3 stride-2 stem of 32 channels, seven stages of inverted-residual MBConv
blocks without squeeze-and-excitation, ReLU6 everywhere, a 1x1 head of 1280
channels, global average pooling and a 1000-way classifier.  Batch
normalization is folded into the convolutions (weights and biases), as
inference runtimes do.  Inputs are NCHW float32, 224x224, ``(x - 127) / 128``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

import webml

#: (expand ratio, kernel, stride, output channels, repeats) per stage.
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
CLASSES = 1000


@dataclass(frozen=True)
class ConvSpec:
    name: str
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int
    activation: bool  # ReLU6 after the convolution


def conv_specs() -> Iterator[ConvSpec]:
    """Every convolution of the network, in order (names used as parameter keys)."""
    yield ConvSpec("stem", 3, STEM_CHANNELS, 3, 2, 1, True)
    channels = STEM_CHANNELS
    for s, (expand, kernel, stride, out, repeats) in enumerate(STAGES):
        for r in range(repeats):
            name = f"blocks.{s}.{r}"
            hidden = channels * expand
            if expand != 1:
                yield ConvSpec(f"{name}.expand", channels, hidden, 1, 1, 1, True)
            yield ConvSpec(f"{name}.depthwise", hidden, hidden, kernel, stride if r == 0 else 1, hidden, True)
            yield ConvSpec(f"{name}.project", hidden, out, 1, 1, 1, False)
            channels = out
    yield ConvSpec("head", channels, HEAD_CHANNELS, 1, 1, 1, True)


def random_parameters(seed: int = 0) -> dict[str, np.ndarray]:
    """He-initialized parameters of the right shapes (for benchmarks and tests)."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for c in conv_specs():
        fan_in = c.in_channels // c.groups * c.kernel * c.kernel
        shape = (c.out_channels, c.in_channels // c.groups, c.kernel, c.kernel)
        params[f"{c.name}.weight"] = (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
        params[f"{c.name}.bias"] = (rng.standard_normal(c.out_channels) * 0.01).astype(np.float32)
    params["classifier.weight"] = (rng.standard_normal((HEAD_CHANNELS, CLASSES)) * 0.01).astype(np.float32)
    params["classifier.bias"] = np.zeros(CLASSES, np.float32)
    return params


def build(
    context: webml.MLContext,
    params: dict[str, np.ndarray],
    *,
    batch: int = 1,
    image_size: int = 224,
    features: bool = False,
) -> webml.MLGraph:
    """The graph: input "image" [batch, 3, H, W] -> "logits" [batch, 1000] (or "features" [batch, 1280])."""
    b = webml.MLGraphBuilder(context)

    def const(key: str) -> webml.MLOperand:
        array = params[key]
        return b.constant({"dataType": "float32", "shape": list(array.shape)}, array)

    def conv(x: webml.MLOperand, c: ConvSpec) -> webml.MLOperand:
        pad = c.kernel // 2
        y = b.conv2d(
            x,
            const(f"{c.name}.weight"),
            bias=const(f"{c.name}.bias"),
            strides=[c.stride, c.stride],
            padding=[pad, pad, pad, pad],
            groups=c.groups,
            label=c.name,
        )
        return b.clamp(y, min_value=0, max_value=6, label=f"{c.name}.relu6") if c.activation else y

    x = b.input("image", {"dataType": "float32", "shape": [batch, 3, image_size, image_size]})
    specs = list(conv_specs())
    x = conv(x, specs[0])
    i = 1
    channels = STEM_CHANNELS
    for expand, _kernel, stride, out, repeats in STAGES:
        for r in range(repeats):
            block_in = x
            if expand != 1:
                x = conv(x, specs[i])
                i += 1
            x = conv(x, specs[i])  # depthwise
            x = conv(x, specs[i + 1])  # project
            i += 2
            if r > 0 or (stride == 1 and channels == out):
                x = b.add(x, block_in, label="residual")
            channels = out
    x = conv(x, specs[i])  # head
    pooled = b.reshape(b.average_pool2d(x, label="pool"), [batch, HEAD_CHANNELS])
    if features:
        return b.build({"features": pooled})
    logits = b.add(b.matmul(pooled, const("classifier.weight")), const("classifier.bias"), label="classifier")
    return b.build({"logits": logits})


def flops(batch: int = 1, image_size: int = 224) -> float:
    """Multiply-adds x 2 of one forward pass (convolutions and the classifier)."""
    total = 0.0
    size = image_size
    for c in conv_specs():
        size = (size + 2 * (c.kernel // 2) - c.kernel) // c.stride + 1
        total += 2 * size * size * c.out_channels * (c.in_channels // c.groups) * c.kernel * c.kernel
    total += 2 * HEAD_CHANNELS * CLASSES
    return total * batch
