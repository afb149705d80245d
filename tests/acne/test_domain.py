from pathlib import Path

import numpy as np

from medimg.acne.domain import colour_stats, domain_warning
from medimg.common.images import read_image

PHOTOS = Path(__file__).parents[1] / "data" / "acne04_photos" / "JPEGImages"


def solid(rgb, size=200):
    return np.tile(np.array(rgb, np.uint8), (size, size, 1))


def test_real_acne04_faces_are_in_domain():
    photos = sorted(PHOTOS.glob("*.jpg"))
    assert len(photos) == 4
    for path in photos:
        skin, _ = colour_stats(read_image(path))
        assert skin > 0.2
        assert domain_warning(read_image(path)) is None


def test_skin_tone_passes_and_grey_green_and_tiny_images_are_flagged():
    assert colour_stats(solid((224, 172, 140)))[0] == 1.0  # a light skin tone: Cb 109, Cr 152
    assert domain_warning(solid((224, 172, 140))) is None
    assert "no colour" in domain_warning(solid((120, 120, 120)))
    assert "little skin colour (0%" in domain_warning(solid((40, 160, 60)))
    assert "tiny image (100x50" in domain_warning(solid((224, 172, 140), size=100)[:50])
