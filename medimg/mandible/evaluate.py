"""Predicted vs true mandible masks: the paper's metrics (section 2.2) per case and overall.

    ACC = (TP + TN) / all          P = TP / (TP + FP)          R = TP / (TP + FN)
    IoU_mandible = TP / (TP + FP + FN)      IoU_background = TN / (TN + FP + FN)
    MIoU = (IoU_mandible + IoU_background) / 2              Dice = 2 TP / (2 TP + FP + FN)

"overall" pools the voxel counts of every case (as the paper pools the pixels of its validation
images), so large cases weigh more than small ones.

Inputs are NIfTI masks (nonzero = mandible): a file, a folder holding one (``segment``'s
``mask.nii.gz`` or ``synth``'s ``mandible_mask.nii.gz``), or a folder of cases (sub-folders
holding one, or ``NAME.nii.gz`` files). Cases pair by name: the file or folder name without
``.nii``/``.nii.gz`` and without a trailing ``_mandible`` (``segment``'s default output folder)
or ``_dicom``; a file named ``mask``/``mandible_mask`` takes its folder's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import InputError, expected
from medimg.common.metrics import ConfusionCounts

NIFTI_SUFFIXES = (".nii.gz", ".nii")
GENERIC_MASK_STEMS = ("mask", "mandible_mask")
CASE_SUFFIXES = ("_mandible", "_dicom")
METRIC_KEYS = ("ACC", "precision", "recall", "IoU_mandible", "IoU_background", "MIoU", "Dice")
AFFINE_TOLERANCE_MM = 0.05


def segmentation_scores(counts: ConfusionCounts) -> dict[str, float | int]:
    """The paper's metrics (and Dice) from pixel/voxel counts; see the module docstring."""
    background = ConfusionCounts(tp=counts.tn, fp=counts.fn, fn=counts.fp, tn=counts.tp)
    return {
        "ACC": counts.accuracy,
        "precision": counts.precision,
        "recall": counts.recall,
        "IoU_mandible": counts.iou,
        "IoU_background": background.iou,
        "MIoU": (counts.iou + background.iou) / 2.0,
        "Dice": counts.dice,
        "TP": counts.tp,
        "FP": counts.fp,
        "FN": counts.fn,
        "TN": counts.tn,
    }


def mask_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float | int]:
    """:func:`segmentation_scores` of two masks of one shape (nonzero = mandible).

    Parameters
    ----------
    predicted, truth : (Z, Y, X) (or any equal shape) ndarray of bool or int
    """
    return segmentation_scores(ConfusionCounts.from_masks(np.asarray(predicted) != 0, np.asarray(truth) != 0))


def _strip_nifti(name: str) -> str | None:
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


def case_name(path: Path | str) -> str:
    """The name a mask file or folder pairs by (see the module docstring)."""
    path = Path(path)
    stem = _strip_nifti(path.name)
    if stem is not None and stem.lower() in GENERIC_MASK_STEMS:
        return case_name(path.resolve().parent)
    name = stem if stem is not None else path.name
    for suffix in CASE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def single_mask(path: Path | str) -> Path | None:
    """The one mask a path stands for: a NIfTI file, or a folder holding ``mask.nii.gz`` (or
    ``mandible_mask.nii.gz``...); None for a folder of cases."""
    from medimg.mandible.masks import find_nifti_mask

    path = Path(path)
    if not path.exists():
        raise InputError(expected("an existing mask file or folder", f"'{path}' which does not exist"))
    if path.is_file():
        if _strip_nifti(path.name) is None:
            raise InputError(expected("a NIfTI mask (.nii or .nii.gz)", f"'{path.name}'"))
        return path
    return find_nifti_mask(path)


def case_masks(path: Path | str) -> dict[str, Path]:
    """Case name -> mask file, for a single mask or a folder of cases."""
    path = Path(path)
    single = single_mask(path)
    if single is not None:
        return {case_name(single): single}
    found: dict[str, Path] = {}
    for child in sorted(path.iterdir()):
        if child.name.startswith("."):
            continue
        mask = single_mask(child) if child.is_dir() or _strip_nifti(child.name) is not None else None
        if mask is None:
            continue
        name = case_name(child)
        if name in found:
            raise InputError(expected(f"one mask per case name in '{path}'", f"two for '{name}' ('{found[name].name}' and '{mask.name}')"))
        found[name] = mask
    if not found:
        raise InputError(expected("NIfTI masks (a .nii.gz file, a folder with mask.nii.gz, or a folder of such cases)", f"none in '{path}'"))
    return found


def _pairs(predicted, truth) -> list[tuple[str, Path, Path]]:
    if isinstance(predicted, (list, tuple)) or isinstance(truth, (list, tuple)):
        predicted = list(predicted) if isinstance(predicted, (list, tuple)) else [predicted]
        truth = list(truth) if isinstance(truth, (list, tuple)) else [truth]
        if len(predicted) != len(truth):
            raise InputError(expected(f"as many true masks as predicted ones ({len(predicted)})", len(truth)))
        return [(case_name(t), Path(p), Path(t)) for p, t in zip(predicted, truth)]
    pred_single, truth_single = single_mask(predicted), single_mask(truth)
    if pred_single is not None and truth_single is not None:
        return [(case_name(truth_single), pred_single, truth_single)]
    if (pred_single is None) != (truth_single is None):
        raise InputError(expected("two single masks or two folders of cases", f"a single mask and a folder of cases ('{predicted}', '{truth}')"))
    pred_cases, true_cases = case_masks(predicted), case_masks(truth)
    unmatched = sorted(set(pred_cases) - set(true_cases))
    if unmatched:
        raise InputError(expected(f"a true mask for every predicted case (cases in '{truth}': {', '.join(sorted(true_cases))})",
                                  f"none for {', '.join(repr(n) for n in unmatched)}"))
    unpredicted = sorted(set(true_cases) - set(pred_cases))
    if unpredicted:
        console.warn(f"{len(unpredicted)} true case(s) without a prediction, not scored: {', '.join(unpredicted)}")
    return [(name, pred_cases[name], true_cases[name]) for name in sorted(pred_cases)]


def evaluate(predicted: Path | str | Sequence[Path | str], truth: Path | str | Sequence[Path | str]) -> dict:
    """Score predicted against true masks, per case and pooled.

    Parameters
    ----------
    predicted, truth : path or sequence of paths
        Single masks, folders holding one, or folders of cases paired by name; two sequences
        pair in order.

    Returns
    -------
    dict
        ``{"cases": [{"case", "predicted", "truth", ACC, precision, recall, IoU_mandible,
        IoU_background, MIoU, Dice, TP, FP, FN, TN}, ...], "overall": {"cases": n, ...metrics}}``

    Raises
    ------
    InputError
        Missing files, unpaired predicted cases, or masks of different shapes.
    """
    from medimg.common.nifti import read_nifti

    rows, total = [], ConfusionCounts(0, 0, 0, 0)
    for name, pred_path, true_path in _pairs(predicted, truth):
        pred_mask, pred_affine = read_nifti(pred_path)
        true_mask, true_affine = read_nifti(true_path)
        if pred_mask.shape != true_mask.shape:
            raise InputError(expected(f"a predicted mask of shape {true_mask.shape} (the true mask's) for case '{name}'",
                                      f"{pred_mask.shape} in '{pred_path}'"))
        if not np.allclose(pred_affine, true_affine, atol=AFFINE_TOLERANCE_MM, rtol=0):
            console.warn(f"case '{name}': the masks' affines differ by up to {np.abs(pred_affine - true_affine).max():.3g} mm; "
                         "scored voxel by voxel anyway")
        counts = ConfusionCounts.from_masks(pred_mask != 0, true_mask != 0)
        total = total + counts
        rows.append({"case": name, "predicted": str(pred_path), "truth": str(true_path), **segmentation_scores(counts)})
    return {"cases": rows, "overall": {"cases": len(rows), **segmentation_scores(total)}}


def evaluation_records(result: dict) -> list[dict]:
    """Flat rows for a table or CSV: one per case, then ``overall``."""
    keys = (*METRIC_KEYS, "TP", "FP", "FN", "TN")
    rows = [{"case": row["case"], **{key: row[key] for key in keys}} for row in result["cases"]]
    rows.append({"case": "overall", **{key: result["overall"][key] for key in keys}})
    return rows
