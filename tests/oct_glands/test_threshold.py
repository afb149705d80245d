import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.threshold import binarize, otsu_threshold


def test_otsu_on_a_bimodal_map_separates_the_modes():
    probability = np.concatenate([np.full(900, 0.1), np.full(100, 0.9)]).astype(np.float32).reshape(10, 10, 10)
    threshold = otsu_threshold(probability)
    assert 0.1 < threshold <= 0.9
    mask, used = binarize(probability)
    assert used == threshold
    assert mask.sum() == 100


def test_otsu_matches_the_between_class_variance_maximum():
    rng = np.random.default_rng(0)
    probability = np.clip(np.concatenate([rng.normal(0.2, 0.05, 5000), rng.normal(0.7, 0.05, 1000)]), 0, 1)
    threshold = otsu_threshold(probability)
    counts, edges = np.histogram(probability, bins=256, range=(0, 1))
    centres = (edges[:-1] + edges[1:]) / 2
    best, best_t = -1.0, None
    for i in range(1, 256):  # brute force over split points: class 0 = bins below i
        w0, w1 = counts[:i].sum(), counts[i:].sum()
        if w0 == 0 or w1 == 0:
            continue
        m0 = (counts[:i] * centres[:i]).sum() / w0
        m1 = (counts[i:] * centres[i:]).sum() / w1
        variance = w0 * w1 * (m0 - m1) ** 2
        if variance > best:
            best, best_t = variance, edges[i]
    assert threshold == pytest.approx(best_t)
    assert np.count_nonzero(probability >= threshold) == counts[round(best_t * 256):].sum()


def test_fixed_threshold_uses_greater_or_equal():
    probability = np.array([0.49, 0.5, 0.51], np.float32)
    mask, used = binarize(probability, threshold=0.5)
    assert used == 0.5 and mask.tolist() == [False, True, True]
    with pytest.raises(InputError, match=r"expected a threshold in \[0, 1\]"):
        binarize(probability, threshold=1.5)


def test_constant_map_selects_nothing():
    mask, _ = binarize(np.zeros((3, 3, 3), np.float32))
    assert not mask.any()


def test_a_depth_window_gets_the_threshold_of_the_whole_volume_it_stands_for():
    from medimg.oct_glands.depth_window import DepthWindow, encode_probability
    from medimg.oct_glands.threshold import window_histogram, window_threshold

    rng = np.random.default_rng(3)
    band = np.clip(np.concatenate([rng.normal(0.45, 0.05, 3000), rng.normal(0.9, 0.03, 1000)]), 0, 1).astype(np.float32).reshape(4, 25, 40)
    volume = np.zeros((4, 60, 40), np.float32)
    volume[:, 20:45] = band
    window = DepthWindow(band, top=20, depth=60)
    # the zeros above and below count: they are a class of their own, and the band's two modes go together
    assert window_threshold(window) == otsu_threshold(volume) == 1 / 256
    assert otsu_threshold(band) == pytest.approx(0.64, abs=0.02)
    # uint8 codes are binned exactly as their decoded values
    codes = DepthWindow(encode_probability(band), top=20, depth=60, scale=1 / 255)
    decoded = np.zeros_like(volume)
    decoded[:, 20:45] = codes.values(slice(None))
    np.testing.assert_array_equal(window_histogram(codes), np.histogram(decoded, bins=256, range=(0, 1))[0])
    assert window_threshold(codes, threshold=0.3) == 0.3
    with pytest.raises(InputError, match="threshold in"):
        window_threshold(codes, threshold=1.5)
