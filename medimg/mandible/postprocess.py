"""From the network's probabilities to the placed outputs: threshold and keep the largest component
(:func:`mask_from_probabilities`), the grid every output is placed on (:func:`stored_affine`,
:func:`lps_affine`), and the mask's surface as an STL (:func:`write_mesh`).

Shared by :func:`medimg.mandible.pipeline.segment` and the stage commands
(:mod:`medimg.mandible.stages`), so the chain's mask.nii.gz and mandible.stl equal segment's byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from medimg.common.errors import InputError, expected

DEFAULT_THRESHOLD = 0.5
DEFAULT_SMOOTHING = 10
# The mandible is one bone, but a field of view that cuts off the chin shows it as two halves of
# similar size: components this large against the largest are kept, specks are dropped.
MAJOR_COMPONENT_FRACTION = 0.25


def check_threshold(threshold: float) -> float:
    if not 0.0 < threshold < 1.0:
        raise InputError(expected("a probability threshold in (0, 1)", threshold))
    return threshold


def mask_from_probabilities(
    probabilities: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD, keep_largest: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Threshold the probabilities and keep the largest 26-connected component (the mandible is one
    bone), with any other of at least :data:`MAJOR_COMPONENT_FRACTION` of its size (both halves of
    a mandible whose chin lies outside the field of view).

    Parameters
    ----------
    probabilities : (Z, Y, X) ndarray of float32 in [0, 1]
    threshold : probability at or above which a voxel is mandible, in (0, 1)
    keep_largest : drop the components smaller than a quarter of the largest

    Returns
    -------
    mask : (Z, Y, X) ndarray of bool
    notes : list of str
        What was dropped, for the report.
    """
    from medimg.mandible.mesh import major_components

    mask = np.asarray(probabilities) >= check_threshold(threshold)
    notes: list[str] = []
    if keep_largest:
        before = int(np.count_nonzero(mask))
        mask = major_components(mask, fraction=MAJOR_COMPONENT_FRACTION)
        dropped = before - int(np.count_nonzero(mask))
        if dropped:
            notes.append(f"kept the largest connected component(s); dropped {dropped} voxel(s) in ones under "
                         f"{MAJOR_COMPONENT_FRACTION:.0%} of the largest")
    return mask, notes


def stored_affine(affine_ras: np.ndarray) -> np.ndarray:
    """The voxel -> RAS affine as a NIfTI-1 file keeps it (float32 sform), as float64.

    Every output is placed with this one affine, whether it is computed from the DICOM series
    (``segment``) or read back from a stage file: then the chain's mask and mesh equal segment's
    byte for byte, and the STL sits exactly on the NIfTI mask (the rounding is under 1e-5 mm).
    """
    return np.asarray(affine_ras, dtype=np.float64).astype(np.float32).astype(np.float64)


def lps_affine(affine_ras: np.ndarray) -> np.ndarray:
    """Voxel -> RAS mm  to  voxel -> LPS mm (DICOM patient space, the STL's): x and y change sign."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine_ras, dtype=np.float64)


def write_mesh(path: Path | str, mask: np.ndarray, affine_lps: np.ndarray, *, smoothing: int = DEFAULT_SMOOTHING,
               inputs: Iterable[Path] = ()) -> dict:
    """Surface of a (non-empty) mask as a binary STL in LPS mm; returns the report's ``mesh`` entry.

    Parameters
    ----------
    path : the ``.stl`` file to write (atomically)
    mask : (Z, Y, X) ndarray of bool, already reduced to the component(s) to mesh
    affine_lps : (4, 4) voxel ``(i, j, k)`` -> LPS mm
    smoothing : Taubin smoothing iterations
    inputs : files the STL must not overwrite
    """
    from medimg.mandible.mesh import is_closed, mask_to_mesh, write_stl

    vertices, faces = mask_to_mesh(mask, affine_lps, smoothing_iterations=smoothing, largest_component=False)
    write_stl(path, vertices, faces, space="LPS", inputs=inputs)
    return {"vertices": int(len(vertices)), "faces": int(len(faces)), "closed": bool(is_closed(faces)), "smoothing_iterations": smoothing}
