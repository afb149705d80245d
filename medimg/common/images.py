"""2-D images: read as 8-bit RGB with EXIF orientation applied, written atomically."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medimg.common.errors import FormatError, InputError, expected
from medimg.common.outputs import atomic_path


def _to_rgb8(image) -> np.ndarray:
    """Convert any Pillow mode (L, LA, P, RGBA, CMYK, I;16, I, F) to ``(H, W, 3) uint8``."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        data = np.asarray(image, dtype=np.float64)
        # 16-bit and float images use their own range: rescale by the type's span, not the data's,
        # so that two photos of the same scene stay comparable.
        top = 65535.0 if image.mode.startswith("I;16") or data.max(initial=0) > 255 else 255.0
        gray = np.clip(np.rint(data / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white rather than dropping alpha, which would reveal arbitrary colours.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_image(path: Path | str) -> np.ndarray:
    """Read a photo as it is meant to be seen.

    Returns
    -------
    image : (H, W, 3) ndarray of uint8
        RGB, with the EXIF orientation applied.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise InputError(expected("an existing image file", f"'{path}' which does not exist"))
    try:
        with Image.open(path) as image:
            image.load()
            oriented = ImageOps.exif_transpose(image)
            return _to_rgb8(oriented)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise FormatError(expected("a readable image (JPEG, PNG, TIFF, BMP)", f"'{path.name}' ({error})")) from None


def write_png(path: Path | str, image: np.ndarray, *, inputs: Iterable[Path] = ()) -> Path:
    """Write ``(H, W)`` or ``(H, W, 3)`` uint8 as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise InputError(expected("an (H, W) or (H, W, 3) uint8 image", f"{image.dtype} array of shape {image.shape}"))
    with atomic_path(path, inputs=inputs) as temporary:
        Image.fromarray(image).save(temporary, format="PNG")
    return path
