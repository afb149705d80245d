"""CT slices -> network input and network output -> CT grid.

The paper (seed 002) exports each DICOM slice to an 8-bit picture, resizes it to 512 x 512 and
feeds it to a U-Net whose ResNet-50 encoder was pretrained on ImageNet. It does not state the
window it used for the export; we use a bone window (:data:`DEFAULT_WINDOW`) because the mandible's
edges against soft tissue, teeth and the other facial bones are what the network must see, and a
soft-tissue window would saturate all bone to one white.

Slices that are not square (a 512 x 640 field of view, say) are resized straight to
``size x size``: the network sees a slightly stretched head, which is harmless because every
training slice goes through the same map, and :func:`resize_slices` stretches the prediction
(logits at inference, :func:`medimg.mandible.inference.predict_volume`) back to the stored rows and columns, so the pixel aspect is restored exactly where it matters.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

# Bone window: level 400 HU, width 2000 HU -> [-600, 1400] HU. Fat and muscle stay dark grey,
# cancellous bone mid grey, cortical bone near white; only enamel and metal saturate.
DEFAULT_WINDOW = (400.0, 2000.0)
DEFAULT_INPUT_SIZE = 256  # the shipped network's slice side (the paper: 512)

# The encoder's statistics: an ImageNet-pretrained ResNet-50 expects inputs standardised with the
# ImageNet RGB mean and standard deviation; using them keeps its first layers' activations in the
# range they were trained for, which is the point of transfer learning. Grey CT replicated to
# three equal channels then differs per channel only by these constants.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_window(level: float, width: float) -> None:
    if not np.isfinite(level) or not np.isfinite(width) or width <= 0:
        raise InputError(expected("a window with a finite level and a positive width (HU)", f"level {level}, width {width}"))


def window(hu: np.ndarray, *, level: float, width: float) -> np.ndarray:
    """Map Hounsfield units to [0, 1] through a linear window.

    Parameters
    ----------
    hu : ndarray of any shape, HU
    level, width : float
        Window centre and width in HU: ``level - width / 2`` -> 0, ``level + width / 2`` -> 1,
        values outside are clipped.

    Returns
    -------
    image : ndarray of float32, same shape, values in [0, 1]
    """
    _check_window(level, width)
    low = level - width / 2.0
    image = (np.asarray(hu, dtype=np.float32) - np.float32(low)) / np.float32(width)
    return np.clip(image, 0.0, 1.0, out=image)


def resize_slices(slices: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(Z, H, W)`` float32 to ``(Z, *shape)``, anti-aliased when shrinking."""
    if slices.shape[1:] == tuple(shape):
        return np.ascontiguousarray(slices, dtype=np.float32)
    import torch
    import torch.nn.functional as functional

    with torch.no_grad():
        tensor = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))[:, None]
        # antialias=True widens the bilinear kernel when shrinking (512 -> 256), so thin cortical
        # bone is averaged rather than skipped; for enlarging it is plain bilinear.
        resized = functional.interpolate(tensor, size=tuple(int(n) for n in shape), mode="bilinear", align_corners=False, antialias=True)
    return resized[:, 0].numpy()


def _check_slices(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(expected(f"{what} as a non-empty (Z, Y, X) array", f"shape {array.shape}"))
    return array


def to_model_input(
    hu_slices: np.ndarray,
    *,
    size: int,
    level: float = DEFAULT_WINDOW[0],
    width: float = DEFAULT_WINDOW[1],
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> np.ndarray:
    """Windowed, resized, 3-channel, ImageNet-normalised slices for the segmentation network.

    Parameters
    ----------
    hu_slices : (Z, Y, X) ndarray of float32 (HU)
    size : int
        Side of the square network input (the paper: 512).
    level, width : float
        Window in HU (default :data:`DEFAULT_WINDOW`).
    mean, std : one number per network input channel (default: ImageNet's, three channels)

    Returns
    -------
    batch : (Z, C, size, size) ndarray of float32
        Each slice resized straight to ``size x size`` (non-square slices are stretched; see the
        module docstring), replicated to the C = ``len(mean)`` channels, then ``(x - mean[c]) / std[c]``.
    """
    hu_slices = _check_slices(hu_slices, "CT slices")
    if int(size) < 1:
        raise InputError(expected("a positive input size", size))
    resized = resize_slices(window(hu_slices, level=level, width=width), (int(size), int(size)))
    mean = np.asarray(mean, dtype=np.float32)[None, :, None, None]
    std = np.asarray(std, dtype=np.float32)[None, :, None, None]
    if mean.shape != std.shape or not np.all(std > 0):
        raise InputError(expected("one mean and one positive std per input channel", f"mean {mean.ravel()}, std {std.ravel()}"))
    return (resized[:, None] - mean) / std


def to_original_grid(probabilities: np.ndarray, *, shape: tuple[int, int]) -> np.ndarray:
    """Bring per-slice network outputs back to the CT's rows and columns.

    Parameters
    ----------
    probabilities : (Z, size, size) ndarray of float32, values in [0, 1]
    shape : (Y, X)
        Rows and columns of the original slices.

    Returns
    -------
    probabilities : (Z, Y, X) ndarray of float32, values in [0, 1]
        Bilinear (anti-aliased when shrinking) resampling; threshold it at 0.5 for the mask.
    """
    probabilities = _check_slices(probabilities, "probabilities")
    shape = tuple(int(n) for n in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise InputError(expected("a slice shape (Y, X) of positive sizes", shape))
    resized = resize_slices(probabilities.astype(np.float32, copy=False), shape)
    # The interpolation weights are non-negative and sum to one, so this only removes rounding.
    return np.clip(resized, 0.0, 1.0, out=resized)
