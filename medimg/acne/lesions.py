"""Lesion centres: boxes -> heat-map targets for training, heat-maps -> lesion boxes at inference.

One lesion is one box of ACNE04 (its class names are unreliable, so every box counts once). The
target is CenterNet's: a Gaussian bump per box centre on the network's stride-4 grid, peak 1 at
the cell holding the centre; the detector reads local maxima of the predicted heat-map above a
threshold (a 3 x 3 max filter is the whole non-maximum suppression).
"""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, expected

__all__ = ["DETECTION_COLUMNS", "centre_heatmap", "detect_lesions", "scale_boxes"]

#: columns of a detection array, in input (or photo) pixels
DETECTION_COLUMNS = ("x", "y", "width", "height", "score")
_MIN_SIGMA_CELLS = 0.8


def _check_boxes(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4), np.float32)
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise InputError(expected("boxes as xmin, ymin, xmax, ymax with max >= min", "an inverted box"))
    return boxes


def centre_heatmap(boxes: np.ndarray, grid: tuple[int, int], *, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets of one image's lesion boxes.

    Parameters
    ----------
    boxes : (K, 4) ndarray of float, xmin, ymin, xmax, ymax in input pixels
    grid : (GH, GW), the heat-map's shape (input size / ``stride``)

    Returns
    -------
    heatmap : (1, GH, GW) ndarray of float32 in [0, 1]
        Max over lesions of ``exp(-d^2 / 2 sigma^2)``, ``sigma = max(0.8, box side / 6)`` cells,
        exactly 1 at each centre's cell.
    size : (2, GH, GW) ndarray of float32
        ``log(width), log(height)`` (input pixels) at the centre cells, 0 elsewhere.
    size_mask : (1, GH, GW) ndarray of float32, 1 at the centre cells
    """
    boxes = _check_boxes(boxes)
    gh, gw = grid
    heatmap = np.zeros((1, gh, gw), np.float32)
    size = np.zeros((2, gh, gw), np.float32)
    mask = np.zeros((1, gh, gw), np.float32)
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32)
    for xmin, ymin, xmax, ymax in boxes:
        cx = min(max(int((xmin + xmax) / 2 / stride), 0), gw - 1)
        cy = min(max(int((ymin + ymax) / 2 / stride), 0), gh - 1)
        width, height = max(xmax - xmin, 1.0), max(ymax - ymin, 1.0)
        sigma = max(_MIN_SIGMA_CELLS, np.sqrt(width * height) / stride / 6.0)
        r = int(np.ceil(3 * sigma))
        y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, gh), max(cx - r, 0), min(cx + r + 1, gw)
        bump = np.exp(-((xs[y0:y1, x0:x1] - cx) ** 2 + (ys[y0:y1, x0:x1] - cy) ** 2) / (2 * sigma**2))
        np.maximum(heatmap[0, y0:y1, x0:x1], bump, out=heatmap[0, y0:y1, x0:x1])
        size[:, cy, cx] = np.log(width), np.log(height)
        mask[0, cy, cx] = 1.0
    return heatmap, size, mask


def detect_lesions(heatmap: np.ndarray, size_logits: np.ndarray, *, threshold: float, stride: int) -> np.ndarray:
    """Lesions of one image: local maxima (3 x 3) of the heat-map above ``threshold``.

    Parameters
    ----------
    heatmap : (GH, GW) ndarray of float, probabilities (sigmoid of the heat-map logits)
    size_logits : (2, GH, GW) ndarray of float, log box width and height in input pixels
    threshold : float in (0, 1)

    Returns
    -------
    detections : (K, 5) ndarray of float32
        ``x, y, width, height, score`` (:data:`DETECTION_COLUMNS`): box centre and size in input
        pixels, strongest first.
    """
    from scipy.ndimage import maximum_filter

    if not 0.0 < threshold < 1.0:
        raise InputError(expected("a detection threshold in (0, 1)", threshold))
    heatmap = np.asarray(heatmap, dtype=np.float32)
    peaks = (heatmap == maximum_filter(heatmap, size=3, mode="constant", cval=0.0)) & (heatmap > threshold)
    rows, cols = np.nonzero(peaks)
    scores = heatmap[rows, cols]
    order = np.argsort(-scores, kind="stable")
    rows, cols, scores = rows[order], cols[order], scores[order]
    sizes = np.exp(np.clip(np.asarray(size_logits, dtype=np.float32)[:, rows, cols], -2.0, 8.0))
    return np.stack([(cols + 0.5) * stride, (rows + 0.5) * stride, sizes[0], sizes[1], scores], axis=1).astype(np.float32).reshape(-1, 5)


def scale_boxes(detections: np.ndarray, *, from_shape: tuple[int, int], to_shape: tuple[int, int]) -> np.ndarray:
    """Detections from an input of ``from_shape`` (H, W) to a photo of ``to_shape`` (the photo was
    stretched to the input, so x and y scale apart)."""
    detections = np.array(detections, dtype=np.float32).reshape(-1, 5)
    sy, sx = to_shape[0] / from_shape[0], to_shape[1] / from_shape[1]
    detections[:, [0, 2]] *= sx
    detections[:, [1, 3]] *= sy
    return detections
