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

DEFAULT_ARCH = "acne-fusion"


@dataclass(frozen=True)
class InferenceOptions(NetworkOptions):
    batch_size: int = 8  # model None: fusion, or the network a weights file holds


def acne_network(options: InferenceOptions = InferenceOptions()) -> LazyModel:
    """The network of ``options``, loaded on first use; an unknown ``model`` is refused now."""
    return group_network("acne", options, default_model="fusion")


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
