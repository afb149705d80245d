"""The network side of acne grading: which network (:class:`InferenceOptions`, loaded once by
:func:`acne_network`), what it is fed (:func:`load_input`) and what its logits mean
(:func:`predict_probabilities`: the weights' output activation, softmax on both heads).

Used alike by ``grade`` (:mod:`medimg.acne.pipeline`) and ``evaluate`` (:mod:`medimg.acne.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.common.activation import activate
from medimg.common.errors import expected
from medimg.common.images import read_image
from medimg.common.predictor import LazyModel, NetworkOptions, Predictor, group_network, model_io

# what a bare callable (a test's stand-in) is taken to be; the default network is acne_network's
DEFAULT_ARCH = "acne-fusion"


@dataclass(frozen=True)
class InferenceOptions(NetworkOptions):
    batch_size: int = 8  # model None: lesion, or the network a weights file holds


def acne_network(options: InferenceOptions = InferenceOptions()) -> LazyModel:
    """The network of ``options``, loaded on first use; an unknown ``model`` is refused now."""
    return group_network("acne", options, default_model="lesion")


def network_input(photo: np.ndarray, preprocessing: dict) -> np.ndarray:
    """A photo as the network sees it: the one place where acne photos become network inputs.

    Parameters
    ----------
    photo : (H, W, 3) ndarray of uint8, RGB (from :func:`medimg.common.images.read_image`)
    preprocessing : the weights' ``preprocessing`` entry

    Returns
    -------
    image : (3, S, S) ndarray of float32
        Resized (bilinear) to the weights' ``input_size`` and normalised with their ``mean`` and
        ``std`` (``transforms.test_transform``).
    """
    from medimg.acne.transforms import ACNE04_MEAN, ACNE04_STD, test_transform
    from medimg.common.errors import ModelError

    if preprocessing.get("resize", "bilinear") != "bilinear":
        raise ModelError(expected("weights trained on bilinear-resized photos", f"resize {preprocessing['resize']!r}"))
    return test_transform(photo, size=int(preprocessing["input_size"]), mean=preprocessing.get("mean", ACNE04_MEAN),
                          std=preprocessing.get("std", ACNE04_STD))


def load_input(path: Path, preprocessing: dict) -> np.ndarray:
    """:func:`network_input` of the photo at ``path`` (EXIF orientation and mode conversion applied)."""
    return network_input(read_image(path), preprocessing)


def predict_probabilities(images: np.ndarray, predictor: Predictor) -> tuple[np.ndarray, np.ndarray]:
    """Both heads' distributions for a batch of network inputs.

    Parameters
    ----------
    images : (B, 3, S, S) ndarray of float32, from :func:`load_input`
    predictor : ``images -> (count_logits (B, 65), grade_logits (B, 4))``

    Returns
    -------
    count_probs : (B, 65) ndarray of float32, rows summing to 1
    grade_probs : (B, 4) ndarray of float32, rows summing to 1
    """
    _, output = model_io(predictor, DEFAULT_ARCH)
    count_probs, grade_probs = activate(predictor(np.asarray(images, dtype=np.float32)), output)
    return count_probs, grade_probs


def input_preprocessing(predictor: Predictor) -> dict:
    """How photos must be prepared for ``predictor`` (its weights' entry, or the default arch's)."""
    return model_io(predictor, DEFAULT_ARCH)[0]


def flip_averaged_logits(images: np.ndarray, predictor: Predictor):
    """Test-time flip: the logits of ``images`` (B, 3, S, S) averaged with those of their mirror
    images (:func:`medimg.common.test_time.symmetry_averaged` over the last axis); same structure
    and shapes as ``predictor(images)``."""
    from medimg.common.test_time import symmetry_averaged

    return symmetry_averaged(predictor, flip_axes=(-1,))(images)


@dataclass(frozen=True)
class PhotoPrediction:
    """What the network says about one photo.

    ``count_probs`` (65,) and ``grade_probs`` (4,) float32 are the LDL heads' distributions;
    ``detections`` is ``None`` for networks without a lesion heat-map, else (K, 5) float32 rows
    ``x, y, width, height, score`` in the photo's own pixels (:func:`medimg.acne.lesions.detect_lesions`).
    """

    count_probs: np.ndarray
    grade_probs: np.ndarray
    detections: np.ndarray | None = None


def head_names(output: dict) -> list[str]:
    return [head["name"] for head in output.get("heads", [])]


def predict_photos(images: np.ndarray, predictor: Predictor, photo_shapes: list[tuple[int, int]]) -> list[PhotoPrediction]:
    """The network's answer for a batch of network inputs.

    Parameters
    ----------
    images : (B, 3, S, S) ndarray of float32, from :func:`network_input`
    predictor : ``images -> logits`` of the heads its weights' ``output`` names (count, grade and,
        for the lesion network, heatmap and size)
    photo_shapes : B ``(H, W)`` shapes of the photos, to put detections back in photo pixels

    With ``output["test_flip"]`` the logits are averaged with the mirrored photos' first
    (:func:`flip_averaged_logits`); detections use ``output["threshold"]``.
    """
    from medimg.acne.lesions import detect_lesions, scale_boxes
    from medimg.common.errors import ModelError

    _, output = model_io(predictor, DEFAULT_ARCH)
    images = np.asarray(images, dtype=np.float32)
    logits = flip_averaged_logits(images, predictor) if output.get("test_flip") else predictor(images)
    probabilities = dict(zip(head_names(output), activate(logits, output)))
    if "count" not in probabilities or "grade" not in probabilities:
        raise ModelError(expected("a network with count and grade heads", ", ".join(probabilities) or "no named heads"))
    heatmaps, sizes = probabilities.get("heatmap"), probabilities.get("size")
    stride = next((int(head.get("stride", 4)) for head in output["heads"] if head["name"] == "heatmap"), 4)
    predictions = []
    for i, shape in enumerate(photo_shapes):
        detections = None
        if heatmaps is not None and sizes is not None:
            found = detect_lesions(heatmaps[i, 0], sizes[i], threshold=float(output.get("threshold", 0.3)), stride=stride)
            detections = scale_boxes(found, from_shape=images.shape[2:], to_shape=tuple(shape))
        predictions.append(PhotoPrediction(probabilities["count"][i], probabilities["grade"][i], detections))
    return predictions
