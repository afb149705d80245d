"""Test-time augmentation: a predictor's logits averaged over symmetries of its input.

A network trained with flips (and, for volumes, the transposes that keep depth) is not exactly
equivariant to them; averaging its logits over the symmetric copies of an input removes part of
its error that is not, at the cost of one forward pass per copy. Each copy's spatial outputs are
mapped back before averaging; per-item outputs (``(B, K)``) are averaged as they are.

``symmetry_averaged(predictor, flip_axes=..., swap_axes=...)`` is itself a :data:`Predictor`, so
every tiler and pipeline takes it as it takes the network.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from medimg.common.errors import OptionValueError, expected
from medimg.common.predictor import Logits, Predictor


def symmetry_averaged(predictor: Predictor, *, flip_axes: tuple[int, ...] = (-1,), swap_axes: tuple[int, int] | None = None) -> Predictor:
    """``predictor`` averaged over every combination of flips of ``flip_axes`` (and, with
    ``swap_axes``, each of them with those two axes swapped as well).

    Parameters
    ----------
    predictor : ``batch (B, C, *spatial) float32 -> logits``, one array or a tuple
    flip_axes : axes of the batch to mirror (negative: from the end); 2 ** len copies
    swap_axes : two axes of equal size to transpose as well (doubles the copies), or None

    Returns
    -------
    predictor : same input and output shapes as ``predictor``; an output with as many dimensions
        as the batch is mapped back (flips, then the swap, undone) before averaging
    """
    flips = [tuple(axis for axis, flipped in zip(flip_axes, chosen) if flipped) for chosen in product((False, True), repeat=len(flip_axes))]
    swaps = (False,) if swap_axes is None else (False, True)

    def predict(batch: np.ndarray) -> Logits:
        batch = np.asarray(batch, dtype=np.float32)
        spatial = batch.ndim
        if swap_axes is not None and batch.shape[swap_axes[0]] != batch.shape[swap_axes[1]]:
            raise OptionValueError(expected(f"axes {swap_axes} of equal size to swap", f"shape {batch.shape}"))
        total: list[np.ndarray] | None = None
        single = True
        for swapped in swaps:
            for axes in flips:
                copy = np.swapaxes(batch, *swap_axes) if swapped else batch
                copy = np.flip(copy, axes) if axes else copy
                logits = predictor(np.ascontiguousarray(copy))
                single = not isinstance(logits, (tuple, list))
                outputs = [logits] if single else list(logits)
                restored = []
                for output in outputs:
                    if output.ndim == spatial:
                        output = np.flip(output, axes) if axes else output
                        output = np.swapaxes(output, *swap_axes) if swapped else output
                    restored.append(np.asarray(output, dtype=np.float32))
                total = restored if total is None else [a + b for a, b in zip(total, restored)]
        n_copies = len(flips) * len(swaps)
        averaged = tuple(part / n_copies for part in total)
        return averaged[0] if single else averaged

    return predict


TEST_TIME_AUGMENTATIONS = ("none", "flips", "dihedral")


def en_face_symmetries(predictor: Predictor, augmentation: str) -> Predictor:
    """``predictor`` over volume tiles ``(B, C, Y, Z, X)`` averaged over the en-face symmetries
    that keep depth (Z): ``"none"``, ``"flips"`` (Y and X mirrored: 4 passes) or ``"dihedral"``
    (also Y and X swapped, on tiles as wide as they are long: 8 passes)."""
    if augmentation not in TEST_TIME_AUGMENTATIONS:
        raise OptionValueError(expected(f"a test-time augmentation among {', '.join(TEST_TIME_AUGMENTATIONS)}", repr(augmentation)))
    if augmentation == "none":
        return predictor
    return symmetry_averaged(predictor, flip_axes=(2, 4), swap_axes=(2, 4) if augmentation == "dihedral" else None)
