"""Photo -> network input: the report's test and training transforms (resize, crop, flip, rotate, normalise).

Resizing and rotation go through Pillow (bilinear), as torchvision does on PIL images, so a
network trained with the reference code sees the same pixels here.
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

ACNE04_MEAN = (0.45815152, 0.361242, 0.29348266)
ACNE04_STD = (0.2814769, 0.226306, 0.20132513)
INPUT_SIZE = 224
TRAIN_RESIZE = 256
MAX_ROTATION = 20.0


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(expected("an (H, W, 3) uint8 RGB image", got))
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(expected("a non-empty image", f"shape {image.shape}"))


def _check_size(name: str, value: int) -> int:
    value = int(value)
    if value < 1:
        raise InputError(expected(f"{name} >= 1", value))
    return value


def normalize(image: np.ndarray, *, mean=ACNE04_MEAN, std=ACNE04_STD) -> np.ndarray:
    """Scale to [0, 1], subtract the channel mean, divide by the std (ACNE04's by default), move channels first.

    Parameters
    ----------
    image : (H, W, 3) ndarray of uint8
    mean, std : three numbers each, RGB

    Returns
    -------
    tensor : (3, H, W) ndarray of float32
    """
    scaled = image.astype(np.float64) / 255.0
    normalized = (scaled - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    return np.ascontiguousarray(normalized.transpose(2, 0, 1), dtype=np.float32)


def test_transform(image: np.ndarray, *, size: int = INPUT_SIZE, mean=ACNE04_MEAN, std=ACNE04_STD) -> np.ndarray:
    """Evaluation input: resize to ``size x size`` (bilinear, aspect not kept, as ACNE04's code) and normalise.

    Parameters
    ----------
    image : (H, W, 3) ndarray of uint8 (RGB)

    Returns
    -------
    tensor : (3, size, size) ndarray of float32
    """
    from PIL import Image

    _check_image(image)
    size = _check_size("size", size)
    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return normalize(np.asarray(resized, dtype=np.uint8), mean=mean, std=std)


# pytest would collect a module-level function named test_*; this keeps it out of test discovery
test_transform.__test__ = False


def train_transform(
    image: np.ndarray,
    *,
    rng: np.random.Generator,
    size: int = INPUT_SIZE,
    resize: int = TRAIN_RESIZE,
    max_rotation: float = MAX_ROTATION,
) -> np.ndarray:
    """Training augmentation of the report: resize to ``resize x resize``, random ``size x size``
    crop, horizontal flip with probability 1/2, rotation uniform in ``[-max_rotation, max_rotation]``
    degrees (counter-clockwise positive, corners filled black as torchvision does), normalise.

    The random draws are taken from ``rng`` in a fixed order (crop top, crop left, flip, angle),
    so the same generator state gives the same output.

    Parameters
    ----------
    image : (H, W, 3) ndarray of uint8 (RGB)

    Returns
    -------
    tensor : (3, size, size) ndarray of float32
    """
    from PIL import Image

    _check_image(image)
    size = _check_size("size", size)
    resize = _check_size("resize", resize)
    if resize < size:
        raise InputError(expected(f"a resize >= the crop size {size}", resize))
    if not (np.isfinite(max_rotation) and max_rotation >= 0):
        raise InputError(expected("a maximum rotation >= 0 degrees", max_rotation))
    top = int(rng.integers(0, resize - size + 1))
    left = int(rng.integers(0, resize - size + 1))
    flip = bool(rng.random() < 0.5)
    angle = float(rng.uniform(-max_rotation, max_rotation))

    picture = Image.fromarray(image).resize((resize, resize), Image.Resampling.BILINEAR)
    picture = picture.crop((left, top, left + size, top + size))
    if flip:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if angle:
        picture = picture.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=(0, 0, 0))
    return normalize(np.asarray(picture, dtype=np.uint8))
