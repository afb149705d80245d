"""``grade --overlay DIR``: each photo with its detected lesions marked, for a person to check.

A box per detected lesion (the predicted box size around the detected centre), its line width
scaled to the photo, and a caption band at the top with the count and grade.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medimg.common.images import write_png

__all__ = ["draw_lesions", "overlay_name"]

BOX_COLOUR = (0, 255, 64)
CAPTION_COLOUR = (255, 255, 255)


def draw_lesions(photo: np.ndarray, detections: np.ndarray, *, caption: str) -> np.ndarray:
    """The photo with one box per detection and a caption band on top.

    Parameters
    ----------
    photo : (H, W, 3) ndarray of uint8
    detections : (K, 5) ndarray of float, ``x, y, width, height, score`` in photo pixels

    Returns
    -------
    image : (H, W, 3) ndarray of uint8
    """
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(np.asarray(photo, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    height, width = photo.shape[:2]
    line = max(1, round(min(height, width) / 320))
    for x, y, box_w, box_h, _ in np.asarray(detections, dtype=np.float64).reshape(-1, 5):
        half_w, half_h = max(box_w / 2, 2.0), max(box_h / 2, 2.0)
        draw.rectangle((x - half_w, y - half_h, x + half_w, y + half_h), outline=BOX_COLOUR, width=line)
    font_size = max(10, round(min(height, width) / 30))
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        font = ImageFont.load_default()
    band = font_size + 2 * line + 4
    draw.rectangle((0, 0, width, band), fill=(0, 0, 0))
    draw.text((4, 2), caption, fill=CAPTION_COLOUR, font=font)
    return np.asarray(image, dtype=np.uint8)


def overlay_name(photo_path: Path, taken: set[str]) -> str:
    """``<stem>_lesions.png``, made unique within one batch (photos of the same name in two folders)."""
    name = f"{photo_path.stem}_lesions.png"
    number = 2
    while name in taken:
        name = f"{photo_path.stem}_{number}_lesions.png"
        number += 1
    taken.add(name)
    return name


def write_overlay(path: Path, photo: np.ndarray, detections: np.ndarray, *, caption: str, source: Path) -> Path:
    """Write :func:`draw_lesions` as a PNG at ``path`` (atomically; never over ``source``)."""
    return write_png(path, draw_lesions(photo, detections, caption=caption), inputs=[source])
