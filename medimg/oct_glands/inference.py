"""Stage 4: gland probability of every voxel from the network, over the surface-anchored blocks.

The network of :class:`InferenceOptions` is loaded once (:func:`oct_network`) and shared by every
scan of a batch. :func:`predict_probability` normalises each block batch
(:func:`network_input`: the one place where OCT intensities become network inputs, scaled by the
tissue levels of the whole scan so that a dark real scan and a bright phantom look alike), blends the
blocks' logits with the common tiler (Gaussian importance by default; ``constant`` is a plain
mean of the covering blocks' logits, where the paper averaged probabilities), and applies the
weights' output activation once, in place.
A voxel no block covers gets probability 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from medimg.common.activation import activate
from medimg.common.errors import InputError, OptionValueError, expected
from medimg.common.predictor import LazyModel, NetworkOptions, Predictor, group_network, model_io
from medimg.common.test_time import TEST_TIME_AUGMENTATIONS, en_face_symmetries
from medimg.common.tiling import WEIGHTINGS, merge_tiles_by_rows, row_order
from medimg.common.tiling import tile_shapes as tile_shape_rows
from medimg.oct_glands.depth_window import PROBABILITY_CODES, DepthWindow, encode_probability
from medimg.oct_glands.intensity import levels_of_blocks, scale_to_levels

DEFAULT_ARCH = "oct-light"
DEFAULT_TEST_TIME = "flips"


@dataclass(frozen=True)
class InferenceOptions(NetworkOptions):  # model None: light, or the network a weights file holds
    weighting: str = "gaussian"  # how overlapping blocks blend: see medimg.common.tiling
    test_time: str = DEFAULT_TEST_TIME  # en-face symmetries averaged per tile: see medimg.common.test_time

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise OptionValueError(expected(f"--weighting among {', '.join(WEIGHTINGS)}", repr(self.weighting)))
        if self.test_time not in TEST_TIME_AUGMENTATIONS:
            raise OptionValueError(expected(f"--test-time among {', '.join(TEST_TIME_AUGMENTATIONS)}", repr(self.test_time)))


def oct_network(options: InferenceOptions = InferenceOptions()) -> LazyModel:
    """The network of ``options``, loaded on first use (channels-last-3d: fast depthwise convs on CPU)."""
    return group_network("oct", options, default_model="light", channels_last=True)


def _scales_by_tissue(preprocessing: dict) -> bool:
    # The registry's defaults are merged under a file's own entries, so old files show both keys.
    return "divisor" not in preprocessing and preprocessing.get("scaling") == "tissue"


def network_input(blocks: np.ndarray, preprocessing: dict, levels: tuple[float, float, float] | None = None) -> np.ndarray:
    """OCT blocks as the network was trained to see them.

    Parameters
    ----------
    blocks : (B, S, S, S) ndarray of uint8 (log-compressed intensity)
    preprocessing : the weights' ``preprocessing`` entry. Weights that carry a ``divisor`` (all
        trained before tissue scaling: the paper's ``/255``) have intensities divided by it;
        otherwise (``scaling: "tissue"``) grey levels are centred and scaled by the scan's tissue
        ``levels`` (:func:`medimg.oct_glands.intensity.scale_to_levels`).
    levels : (low, centre, high) grey levels of the scan's tissue
        (:func:`medimg.oct_glands.intensity.tissue_levels`); needed for ``scaling: "tissue"``

    Returns
    -------
    batch : (B, 1, S, S, S) ndarray of float32
    """
    if _scales_by_tissue(preprocessing):
        if levels is None:
            raise InputError(expected("the tissue levels of the scan for these weights", "none"))
        return scale_to_levels(blocks, levels)[:, None]
    divisor = float(preprocessing.get("divisor", 255.0))
    if not divisor > 0:
        raise InputError(expected("a positive intensity divisor in the weights' preprocessing", divisor))
    return (np.asarray(blocks, dtype=np.float32) / np.float32(divisor))[:, None]


PROBABILITY_STORAGE = ("float32", "uint8")
# A 3-D U-Net holds about 1 KB of activations per input voxel on CPU (its full-size skip, the
# upsampled features and their concatenation): batches are capped at two 80^3 blocks, ~1 GB.
MAX_BATCH_VOXELS = 2 * 80**3


def predict_probability(
    read_blocks: Callable[[slice], np.ndarray],
    corners: np.ndarray,
    volume_shape: tuple[int, int, int],
    *,
    block_size: int,
    tile_shapes: np.ndarray | None = None,
    predictor: Predictor,
    weighting: str = "gaussian",
    batch_size: int = 4,
    levels: tuple[float, float, float] | None = None,
    test_time: str = "none",
    progress: Callable[[list], Iterable] = lambda items: items,
) -> np.ndarray:
    """Blend the network's predictions over all blocks into a whole probability volume
    (:func:`predict_probability_window`, float32, over every depth).

    Returns
    -------
    probability : (Y, Z, X) ndarray of float32 in [0, 1]
    """
    return predict_probability_window(read_blocks, corners, volume_shape, block_size=block_size, tile_shapes=tile_shapes, predictor=predictor,
                                      weighting=weighting, batch_size=batch_size, levels=levels, test_time=test_time,
                                      progress=progress).to_array()


def predict_probability_window(
    read_blocks: Callable[[slice | np.ndarray], np.ndarray],
    corners: np.ndarray,
    volume_shape: tuple[int, int, int],
    *,
    block_size: int,
    tile_shapes: np.ndarray | None = None,
    predictor: Predictor,
    weighting: str = "gaussian",
    batch_size: int = 4,
    levels: tuple[float, float, float] | None = None,
    storage: str = "float32",
    test_time: str = "none",
    finish_rows: Callable[[int, np.ndarray, int], None] | None = None,
    progress: Callable[[list], Iterable] = lambda items: items,
) -> DepthWindow:
    """Blend the network's predictions over all blocks, B-scan rows at a time, into the depths
    the blocks cover (the rest of the volume is probability 0).

    Parameters
    ----------
    read_blocks : ``read_blocks(batch) -> (b, S, S, S)`` uint8 blocks at ``corners[batch]``;
        ``batch`` is a slice or an array of block indices
    corners : (B, 3) ndarray of int, rows (y*, z*, x*)
    block_size : side of the paper's cubic blocks
    tile_shapes : (B, 3) ndarray of int, one shape per tile (the fast path's band tiles,
        :func:`medimg.oct_glands.roi.band_tiles`); None: every tile is a ``block_size`` cube
    predictor : ``(b, 1, S, S, S) float32 -> (b, 1, S, S, S)`` logits; a :class:`LazyModel` brings
        its own preprocessing and output activation, any other callable gets ``oct-light``'s
    levels : the scan's tissue levels (:func:`medimg.oct_glands.intensity.tissue_levels`), for
        weights that scale by them; None: measured on up to 64 of the blocks
    storage : "float32" (the probabilities themselves) or "uint8" (codes ``round(255 p)``: a
        quarter of the memory, within 0.002 of the float)
    test_time : "none", "flips" or "dihedral": each tile's logits averaged over its en-face
        mirror images (and Y-X transposes), one pass each (:func:`medimg.common.test_time.en_face_symmetries`)
    finish_rows : ``finish_rows(first_row, probability, top)`` may change each run of finished rows
        (``(rows, W, X)`` float32, depths from ``top``) in place before it is stored
    batch_size : tiles per forward pass, fewer where they would exceed :data:`MAX_BATCH_VOXELS`

    Returns
    -------
    probability : :class:`DepthWindow` over the blocks' depths, float32 or uint8 codes
    """
    if storage not in PROBABILITY_STORAGE:
        raise OptionValueError(expected(f"a probability storage among {', '.join(PROBABILITY_STORAGE)}", repr(storage)))
    preprocessing, output = model_io(predictor, DEFAULT_ARCH)
    corners = np.asarray(corners, dtype=np.int64).reshape(-1, 3)
    shapes = tile_shape_rows((block_size,) * 3 if tile_shapes is None else tile_shapes, len(corners), 3)
    if levels is None and _scales_by_tissue(preprocessing) and len(corners):
        step = max(1, len(corners) // 64)
        if tile_shapes is None:
            levels = levels_of_blocks(read_blocks(slice(0, len(corners), step)))
        else:  # tiles of several shapes: read one at a time
            levels = levels_of_blocks(np.concatenate([read_blocks(slice(i, i + 1)).reshape(1, -1, 1, 1) for i in range(0, len(corners), step)], axis=1))
    n_y, n_z, n_x = (int(n) for n in volume_shape)
    top = int(np.clip(corners[:, 1].min(), 0, n_z)) if len(corners) else 0
    bottom = int(np.clip((corners[:, 1] + shapes[:, 1]).max(), top, n_z)) if len(corners) else 0
    window = DepthWindow(np.zeros((n_y, bottom - top, n_x), dtype=np.uint8 if storage == "uint8" else np.float32), top=top, depth=n_z,
                         scale=1.0 / PROBABILITY_CODES if storage == "uint8" else None)
    order = row_order(corners, shapes)
    local_corners = corners[order] - np.array([0, top, 0])

    def store(first_row: int, logits: np.ndarray) -> None:
        probability = activate(logits[None], output, in_place=True)[0, 0]
        if finish_rows is not None:
            finish_rows(first_row, probability, top)
        rows = slice(first_row, first_row + probability.shape[0])
        window.data[rows] = encode_probability(probability) if storage == "uint8" else probability

    merge_tiles_by_rows(
        lambda batch: read_blocks(order[batch]), local_corners, window.data.shape, shapes[order], sink=store,
        predictor=en_face_symmetries(predictor, test_time),
        prepare=lambda blocks: network_input(blocks, preprocessing, levels), weighting=weighting, batch_size=batch_size,
        max_batch_voxels=MAX_BATCH_VOXELS, progress=progress,
    )
    return window
