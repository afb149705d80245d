"""Evaluation against ground truth: voxel IoU/Dice of gland masks, pore RT/RF (paper section 2)."""

from __future__ import annotations

import numpy as np

from medimg.common.errors import InputError, OptionValueError, expected
from medimg.common.metrics import ConfusionCounts

PORE_RADIUS = 9.8989  # half the ridge width in the paper's scans, in voxels


def voxel_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | int]:
    """IoU = |S n S'| / |S u S'| and Dice = 2|S n S'| / (|S| + |S'|) of two masks (nonzero = gland).

    Parameters
    ----------
    predicted, truth : (Y, Z, X) ndarray of int or bool
    """
    counts = ConfusionCounts.from_masks(np.asarray(predicted) > 0, np.asarray(truth) > 0)
    return {"iou": counts.iou, "dice": counts.dice, "predicted_voxels": counts.tp + counts.fp, "true_voxels": counts.tp + counts.fn}


def pore_scores(predicted: np.ndarray, truth: np.ndarray, *, radius: float = PORE_RADIUS) -> dict[str, float | int]:
    """Pore-level scores on the en-face plane.

    A predicted pore is correct when the nearest true pore lies within ``radius`` (Euclidean,
    in (x, y)). ``RT = correct predicted / true pores`` and ``RF = wrong predicted / predicted``,
    as in the paper. Because two predictions may sit near one true pore, RT can exceed the
    share of true pores found; ``detected`` (true pores with a prediction within ``radius``)
    is reported beside it.

    Parameters
    ----------
    predicted, truth : (n, 2) ndarray of float, rows (x, y)
    """
    from scipy.spatial import cKDTree

    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    if not radius > 0:
        raise InputError(expected("a radius > 0", radius))
    if len(truth) == 0:
        raise InputError(expected("at least one true pore", "none"))
    if len(predicted):
        distance, _ = cKDTree(truth).query(predicted)
        correct = int(np.count_nonzero(distance <= radius))
        distance_back, _ = cKDTree(predicted).query(truth)
        detected = int(np.count_nonzero(distance_back <= radius))
    else:
        correct = detected = 0
    wrong = len(predicted) - correct
    return {
        "RT": correct / len(truth),
        "RF": wrong / len(predicted) if len(predicted) else float("nan"),
        "detected": detected / len(truth),
        "correct_predicted": correct,
        "wrong_predicted": wrong,
        "predicted_pores": len(predicted),
        "true_pores": len(truth),
        "radius": radius,
    }


def _pore_xy(path) -> np.ndarray:
    from medimg.common.tables import read_csv

    rows = read_csv(path, required=("x", "y"))
    try:
        return np.array([[float(row["x"]), float(row["y"])] for row in rows], dtype=np.float64).reshape(-1, 2)
    except ValueError:
        from medimg.common.errors import FormatError

        raise FormatError(expected("numeric x, y columns", f"a non-number in '{path}'")) from None


def evaluate_files(
    *,
    predicted_mask=None,
    true_mask=None,
    predicted_pores=None,
    true_pores=None,
    radius: float = PORE_RADIUS,
) -> dict[str, float | int]:
    """Scores from files: masks/label TIFFs (voxel IoU, Dice) and/or pore CSVs with x, y columns (RT, RF)."""
    from medimg.common.volumes import read_volume

    if (predicted_mask is None) != (true_mask is None) or (predicted_pores is None) != (true_pores is None):
        raise InputError(expected("masks and pores in pairs (predicted and true)", "only one of a pair"))
    if predicted_mask is None and predicted_pores is None:
        raise OptionValueError(expected("--pred-mask/--true-mask and/or --pred-pores/--true-pores", "neither"))
    scores: dict[str, float | int] = {}
    if predicted_mask is not None:
        scores.update(voxel_scores(np.asarray(read_volume(predicted_mask)), np.asarray(read_volume(true_mask))))
    if predicted_pores is not None:
        scores.update(pore_scores(_pore_xy(predicted_pores), _pore_xy(true_pores), radius=radius))
    return scores
