"""2-D images: read as 8-bit RGB with EXIF orientation applied, written atomically."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import FormatError, InputError, expected
from medimg.common.outputs import atomic_path

TWELVE_BIT_MAX = 4095
SIXTEEN_BIT_MAX = 65535


def intensity_span(data: np.ndarray, *, container: str) -> tuple[float, str | None]:
    """The value that maps to white for a grayscale image stored deeper than 8 bits.

    The container's type does not say what range the camera used, so the data's maximum picks it:

    - ``"float"`` (Pillow mode ``F``): maximum <= 1 -> [0, 1]; else <= 255 -> [0, 255];
      larger values follow the integer rules;
    - ``"16-bit"`` (``I;16``) and ``"32-bit"`` (``I``) integers: a maximum below 4096 is 12-bit
      data (scanners, dermatoscopes) -> [0, 4095], except that a 32-bit image with a maximum
      <= 255 is 8-bit data -> [0, 255]; a maximum of 4096..65535 -> [0, 65535] (genuine 16-bit
      data keep the type's span, so that two photos of one scene stay comparable); above 65535
      -> stretched to the maximum.

    Parameters
    ----------
    data : (H, W) ndarray of int or float
    container : ``"float"``, ``"16-bit"`` or ``"32-bit"``

    Returns
    -------
    span : float
        Divide by it to get [0, 1] (values outside are clipped).
    note : str or None
        Why, when the span is a guess the user should know about (12-bit, stretched).
    """
    if container not in ("float", "16-bit", "32-bit"):
        raise InputError(expected("a container 'float', '16-bit' or '32-bit'", repr(container)))
    values = np.asarray(data, dtype=np.float64)
    top = float(values[np.isfinite(values)].max(initial=0.0))
    if container == "float" and top <= 1.0:
        return 1.0, None
    if top <= 255.0 and container != "16-bit":
        return 255.0, None
    if top < TWELVE_BIT_MAX + 1:
        note = f"values up to {top:g} (< 4096) read as 12-bit data (0..4095 -> black..white)" if top > 0 else None
        return float(TWELVE_BIT_MAX), note
    if top <= SIXTEEN_BIT_MAX:
        return float(SIXTEEN_BIT_MAX), None
    return top, f"values up to {top:g} (> 65535) stretched to black..white"


def _to_rgb8(image, *, name: str = "image") -> np.ndarray:
    """Convert any Pillow mode (L, LA, P, RGBA, CMYK, I;16, I, F) to ``(H, W, 3) uint8``.

    Grayscale deeper than 8 bits is scaled by :func:`intensity_span`; a guessed span is said on stderr.
    """
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        container = "float" if image.mode == "F" else "16-bit" if image.mode.startswith("I;16") else "32-bit"
        stored = np.asarray(image)
        span, note = intensity_span(stored, container=container)
        if note is not None:
            console.warn(f"'{name}' ({image.mode}): {note}")
        data = np.nan_to_num(stored.astype(np.float64), nan=0.0, posinf=span, neginf=0.0)
        gray = np.clip(np.rint(data / span * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white rather than dropping alpha, which would reveal arbitrary colours.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


#: the largest photo read (a 100 MP RGB photo decodes to 300 MB; medical cameras stay far below)
MAX_PHOTO_PIXELS = 100_000_000


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
            if image.width * image.height > MAX_PHOTO_PIXELS:  # checked before decoding: no gigabytes spent first
                raise FormatError(expected(f"a photo of at most {MAX_PHOTO_PIXELS / 1e6:.0f} megapixels",
                                           f"{image.width}x{image.height} ({image.width * image.height / 1e6:.1f} MP) in '{path.name}'"))
            image.load()
            oriented = ImageOps.exif_transpose(image)
            return _to_rgb8(oriented, name=path.name)
    except Image.DecompressionBombError as error:
        # PIL's guard against images whose pixels would fill memory: one bad file, not a crash.
        raise FormatError(expected("an image of at most about 179 megapixels", f"'{path.name}' ({error})")) from None
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
