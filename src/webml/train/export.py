"""A trained classifier as one standard ONNX model: the frozen base and the head in one graph.

:func:`export_onnx` builds the whole classifier with
:class:`~webml.MLGraphBuilder` (EfficientNet-Lite0's features, the trained
head, a softmax) and writes it with :func:`webml.onnx.save`'s lowering, so
ONNX Runtime, onnxruntime-web and ``webml classify --model`` run it.

The model's contract (also in its ``doc_string`` and, as JSON, in its
``metadata_props`` under :data:`METADATA_KEY`, with the class names):

* input ``image``: float32 ``[1, 3, 224, 224]`` (NCHW), RGB values 0..255
  (not normalized: the graph does ``(x - 127) / 128`` itself);
* the photo is prepared as for training: the central 224/256 of its shorter
  side (the whole image for a base trained with ``center_crop=False``),
  resized bilinearly to 224x224;
* output ``probabilities``: float32 ``[1, classes]``, softmax, in the order
  of the class names.

:func:`classifier_metadata` reads that JSON back from a ModelProto and
:func:`pixels` prepares photos as it says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api.builder import MLGraphBuilder
from ..api.context import MLContext
from ..api.graph import MLGraph
from .embeddings import EfficientNetLite0Features, FeatureExtractor, base_from_spec
from .transfer import TransferClassifier, head_forward

__all__ = [
    "EXPORT_FORMAT",
    "METADATA_KEY",
    "check_exportable",
    "classifier_graph",
    "classifier_metadata",
    "export_onnx",
    "pixels",
]

#: The ``metadata_props`` key holding the classifier's JSON description.
METADATA_KEY = "webml.classifier"
#: Its ``format`` entry.
EXPORT_FORMAT = "webml.transfer.classifier.onnx"
INPUT_NAME, OUTPUT_NAME = "image", "probabilities"


def _not_exportable(base_name: str) -> ValueError:
    return ValueError(
        f"only classifiers trained on the efficientnet-lite0 base can be exported to ONNX, "
        f"not one trained on {base_name!r} (save it as .npz instead)"
    )


def check_exportable(base: FeatureExtractor) -> None:
    """Refuse, before any training, a base that :func:`export_onnx` cannot put into the model."""
    if not isinstance(base, EfficientNetLite0Features):
        raise _not_exportable(base.name)


def _lite_base(classifier: TransferClassifier, context: MLContext) -> EfficientNetLite0Features:
    if classifier.base_spec.get("kind") != "efficientnet-lite0":
        raise _not_exportable(classifier.base_name)
    base = base_from_spec(classifier.base_spec, context)
    assert isinstance(base, EfficientNetLite0Features)
    return base


def classifier_graph(context: MLContext, classifier: TransferClassifier) -> MLGraph:
    """The whole classifier as one graph: ``image`` (RGB 0..255, [1, 3, 224, 224]) -> ``probabilities``."""
    from ..zoo import efficientnet_lite as lite

    base = _lite_base(classifier, context)
    b = MLGraphBuilder(context)
    size = lite.IMAGE_SIZE
    image = b.input(INPUT_NAME, {"dataType": "float32", "shape": [1, 3, size, size]})

    def scalar(value: float) -> Any:
        return b.constant({"dataType": "float32", "shape": []}, np.float32(value))

    x = b.div(b.sub(image, scalar(lite.MEAN)), scalar(lite.STD), label="normalize")
    features = lite.add_features(b, base.parameters(), x)
    params = {n: b.constant({"dataType": "float32", "shape": list(a.shape)}, a) for n, a in classifier.params.items()}
    return b.build({OUTPUT_NAME: b.softmax(head_forward(b, params, features), 1, label="probabilities")})


def _description(classifier: TransferClassifier, base: EfficientNetLite0Features) -> dict[str, Any]:
    from ..zoo import efficientnet_lite as lite

    size = lite.IMAGE_SIZE
    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "labels": list(classifier.class_names),
        "input": {
            "name": INPUT_NAME,
            "shape": [1, 3, size, size],
            "layout": "NCHW",
            "channels": "RGB",
            "range": [0, 255],
            "crop": base.crop,
            "resize": "bilinear",
        },
        "output": {"name": OUTPUT_NAME, "shape": [1, len(classifier.class_names)], "kind": "softmax"},
        "base": classifier.base_name,
        "training": classifier.metadata.get("training", {}),
    }


def _doc(description: dict[str, Any]) -> str:
    inp = description["input"]
    crop = "the whole photo" if inp["crop"] == 1 else f"the central {inp['crop']:g} of the photo's shorter side"
    return (
        f"Image classifier trained by webml train on {description['base']} features. "
        f"Input {inp['name']!r}: float32 {inp['shape']} ({inp['layout']}), {inp['channels']} values 0..255, "
        f"from {crop} resized ({inp['resize']}) to {inp['shape'][2]}x{inp['shape'][3]}. "
        f"Output {description['output']['name']!r}: softmax probabilities of the classes "
        f"{', '.join(description['labels'])} (also in metadata_props[{METADATA_KEY!r}], as JSON)."
    )


def export_onnx(
    classifier: TransferClassifier, path: str | os.PathLike[str], context: MLContext | None = None
) -> None:
    """Write ``classifier`` (base and head) to ``path`` as one ONNX model, described in its metadata."""
    import onnx

    import webml
    import webml.onnx

    context = webml.ml.create_context() if context is None else context
    base = _lite_base(classifier, context)
    # to_model reads the weights again after build: build where the graph keeps them.
    keeping = webml.ml.create_context(backend="onnxruntime", keep_constants=True)
    model = webml.onnx.to_model(classifier_graph(keeping, classifier))
    description = _description(classifier, base)
    model.doc_string = _doc(description)
    model.producer_name, model.producer_version = "webml", webml.__version__
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(description)})
    onnx.save_model(model, os.fspath(path))


def classifier_metadata(model: Any) -> dict[str, Any] | None:
    """The description :func:`export_onnx` put into ``model`` (a ModelProto), or None for another model."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                description = json.loads(prop.value)
            except ValueError:
                return None
            ok = isinstance(description, dict) and description.get("format") == EXPORT_FORMAT
            return description if ok and isinstance(description.get("labels"), list) else None
    return None


def pixels(description: dict[str, Any], images: Sequence[Any]) -> np.ndarray:
    """Photos (PIL images or paths) prepared as an exported model's ``description`` says: its input array."""
    from ..zoo import efficientnet_lite as lite
    from .embeddings import read_image

    _, _, height, width = description["input"]["shape"]
    if height != width:
        raise ValueError(f"the model's input is not square ({height} x {width})")
    crop = float(description["input"].get("crop", lite.CROP_FRACTION))
    return np.stack([lite.pixels(read_image(im), height, crop).transpose(2, 0, 1) for im in images])
