"""One tiler for 2-D and 3-D inference: choose tiles, predict them in batches, blend their logits.

Tiles are given by their start corners, so any rule can choose them: a regular grid
(:func:`grid_starts`, whose last tile on each axis ends at the far edge, so no voxel is left
out), the paper's surface-anchored OCT blocks, or one tile per CT slice. Each tile's logits are
weighted by an importance map and summed in float32; the merged logits are the weighted mean
over the tiles covering a voxel, and ``fill`` where no tile covers it. The pipeline then applies
the activation once (:func:`medimg.common.activation.activate`): blending logits rather than
probabilities keeps a confident tile from being diluted by a sigmoid's saturation.

Gaussian importance follows nnU-Net and MONAI's ``sliding_window_inference``: sigma = 1/8 of
the tile side, so a voxel near a tile's border, where the network saw least context, counts
little wherever another tile covers it. We keep our own ~100 lines rather than depend on MONAI
or TorchIO: both tile on a regular grid only, and the paper's blocks sit at a per-tile depth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from medimg.common.errors import InputError, ModelError, OptionValueError, expected
from medimg.common.predictor import Predictor

WEIGHTINGS = ("gaussian", "constant")
GAUSSIAN_SIGMA_SCALE = 0.125
_MIN_IMPORTANCE = 1e-3  # keeps border voxels of a lone tile defined


def tile_starts(extent: int, tile: int, stride: int) -> np.ndarray:
    """Starts ``0, stride, 2 stride, ...`` along one axis, plus ``extent - tile`` when the grid
    stops short of the far edge; ``[0]`` when the tile is as long as the axis or longer.

    Returns
    -------
    starts : (n,) ndarray of int64, increasing
    """
    if tile < 1 or stride < 1:
        raise InputError(expected("a tile size and stride >= 1", f"{tile} and {stride}"))
    if extent <= tile:
        return np.zeros(1, dtype=np.int64)
    starts = list(range(0, extent - tile + 1, stride))
    if starts[-1] != extent - tile:
        starts.append(extent - tile)
    return np.asarray(starts, dtype=np.int64)


def grid_starts(shape: Sequence[int], tile_shape: Sequence[int], stride: Sequence[int] | int) -> np.ndarray:
    """Corners of a regular grid of tiles covering ``shape`` to its far edges.

    Returns
    -------
    starts : (N, ndim) ndarray of int64, raster order (last axis fastest)
    """
    strides = (stride,) * len(shape) if isinstance(stride, int) else tuple(stride)
    if not (len(shape) == len(tile_shape) == len(strides)):
        raise InputError(expected(f"a tile shape and stride with {len(shape)} axes", f"{tuple(tile_shape)} and {strides}"))
    axes = [tile_starts(int(n), int(t), int(s)) for n, t, s in zip(shape, tile_shape, strides)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1).astype(np.int64)


def importance_map(tile_shape: Sequence[int], weighting: str = "gaussian") -> np.ndarray:
    """Weight of each voxel of a tile in the blend.

    Returns
    -------
    weights : ndarray of float32 with ``tile_shape``; 1 everywhere ("constant"), or a separable
        Gaussian centred on the tile with sigma = tile / 8 and maximum 1 ("gaussian")
    """
    if weighting not in WEIGHTINGS:
        raise OptionValueError(expected(f"a tile weighting among {', '.join(WEIGHTINGS)}", repr(weighting)))
    weights = np.ones(tuple(int(n) for n in tile_shape), dtype=np.float32)
    if weighting == "constant":
        return weights
    for axis, n in enumerate(weights.shape):
        centre, sigma = (n - 1) / 2.0, max(n * GAUSSIAN_SIGMA_SCALE, 1e-6)
        profile = np.exp(-0.5 * ((np.arange(n) - centre) / sigma) ** 2).astype(np.float32)
        shape = [1] * weights.ndim
        shape[axis] = n
        weights = weights * profile.reshape(shape)
    weights /= weights.max()
    return np.maximum(weights, np.float32(_MIN_IMPORTANCE))


def tile_shapes(tile_shape: Sequence[int] | np.ndarray, count: int, ndim: int) -> np.ndarray:
    """One shape per tile: ``tile_shape`` repeated ``count`` times, or checked when it already
    holds one row per tile.

    Returns
    -------
    shapes : (count, ndim) ndarray of int64
    """
    shapes = np.asarray(tile_shape, dtype=np.int64)
    if shapes.ndim == 1:
        shapes = np.tile(shapes, (count, 1))
    if shapes.shape != (count, ndim) or (shapes < 1).any():
        raise InputError(expected(f"a tile shape of {ndim} sizes >= 1, or one per tile ({count}, {ndim})", f"{np.asarray(tile_shape).tolist()}"))
    return shapes


BEYOND_EDGE = ("edge", "reflect")


def tile_reader(volume: np.ndarray, starts: np.ndarray, tile_shape: Sequence[int] | np.ndarray, *,
                beyond: str = "edge") -> Callable[[slice], np.ndarray]:
    """``read(batch) -> (b, *tile_shape)`` tiles of ``volume`` at ``starts[batch]``. The part of a
    tile that lies outside the volume (a volume smaller than the tile, or a start below 0) is
    completed by repeating the edge voxel (``beyond="edge"``) or by mirroring the volume about
    its edge (``"reflect"``: a field widened so that no voxel sits at a tile's border).
    ``tile_shape`` may hold one shape per tile (``(N, ndim)``); the tiles of one batch then share one."""
    if beyond not in BEYOND_EDGE:
        raise OptionValueError(expected(f"beyond among {', '.join(BEYOND_EDGE)}", repr(beyond)))
    starts = np.asarray(starts, dtype=np.int64).reshape(-1, volume.ndim)
    shapes = tile_shapes(tile_shape, len(starts), volume.ndim)

    def read(batch: slice) -> np.ndarray:
        tiles = []
        for start, shape in zip(starts[batch], shapes[batch]):
            shape = tuple(int(n) for n in shape)
            if all(0 <= s and s + t <= n for s, t, n in zip(start, shape, volume.shape)):
                tiles.append(np.asarray(volume[tuple(slice(int(s), int(s) + t) for s, t in zip(start, shape))]))
                continue
            if any(s + t <= 0 or s >= n for s, t, n in zip(start, shape, volume.shape)):
                raise InputError(expected("tiles that overlap the volume", f"a tile at {tuple(int(s) for s in start)} wholly outside it"))
            indices = [_indices_beyond(np.arange(int(s), int(s) + t), n, beyond) for s, t, n in zip(start, shape, volume.shape)]
            tiles.append(np.asarray(volume[np.ix_(*indices)]))
        if not tiles:
            return np.empty((0, *(int(n) for n in shapes[0])) if len(shapes) else (0,), dtype=volume.dtype)
        if len({tile.shape for tile in tiles}) > 1:
            raise InputError(expected("tiles of one shape within a batch", f"{sorted({tile.shape for tile in tiles})}"))
        return np.stack(tiles)

    return read


def _indices_beyond(indices: np.ndarray, extent: int, beyond: str) -> np.ndarray:
    """Indices along an axis of ``extent`` voxels for positions that may lie outside it: clipped
    to the edge, or mirrored about it (-1 -> 1, extent -> extent - 2)."""
    if beyond == "edge" or extent == 1:
        return np.clip(indices, 0, extent - 1)
    period = 2 * (extent - 1)
    folded = np.abs(indices) % period
    return np.where(folded >= extent, period - folded, folded)


def uniform_batches(shapes: np.ndarray, batch_size: int, *, max_voxels: int | None = None, voxels: np.ndarray | None = None) -> list[slice]:
    """Consecutive runs of at most ``batch_size`` tiles that share one row of ``shapes`` (a network
    batch is one array; extra columns, such as a first coordinate, must match too). With
    ``max_voxels``, a batch also holds at most that many voxels (``voxels``: each tile's count,
    by default the product of its row), or a single tile."""
    if max_voxels is not None and voxels is None:
        voxels = np.prod(shapes, axis=1) if len(shapes) else np.zeros(0, dtype=np.int64)
    batches, first = [], 0
    for index in range(1, len(shapes) + 1):
        full = index - first == batch_size or (max_voxels is not None and (index - first + 1) * int(voxels[first]) > max_voxels)
        if index == len(shapes) or full or not np.array_equal(shapes[index], shapes[first]):
            batches.append(slice(first, index))
            first = index
    return batches


def _add_channel(tiles: np.ndarray) -> np.ndarray:
    return np.asarray(tiles, dtype=np.float32)[:, None]


def _pad_to_divisor(batch: np.ndarray, divisor: int) -> np.ndarray:
    spatial = batch.shape[2:]
    padding = [(0, 0), (0, 0)] + [(0, -n % divisor) for n in spatial]
    return np.pad(batch, padding, mode="reflect" if min(spatial) > 1 else "edge") if any(p[1] for p in padding) else batch


def _predicted_batches(
    read_tiles: Callable[[slice], np.ndarray],
    shapes: np.ndarray,
    batches: list[slice],
    *,
    predictor: Predictor,
    prepare: Callable[[np.ndarray], np.ndarray],
    restore: Callable[[np.ndarray], np.ndarray] | None,
    divisor: int,
    weighting: str,
    ndim: int,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """``(batch, weights, logits)`` for each batch: the tiles' importance map ``tile_shape`` and their
    logits ``(b, K, *tile_shape)`` float32, checked."""
    importance: dict[tuple[int, ...], np.ndarray] = {}
    for batch in batches:
        tile = tuple(int(n) for n in shapes[batch.start])
        if tile not in importance:
            importance[tile] = importance_map(tile, weighting)
        network_input = prepare(read_tiles(batch))
        extent = network_input.shape[2:]
        logits = predictor(_pad_to_divisor(network_input, divisor) if divisor > 1 else network_input)
        logits = np.asarray(logits, dtype=np.float32)
        count = batch.stop - batch.start
        if restore is None and logits.ndim != ndim + 2:
            raise ModelError(expected(f"logits of shape ({count}, K, {', '.join(map(str, tile))})", f"{logits.shape}"))
        if restore is not None:
            logits = np.asarray(restore(logits), dtype=np.float32)
        else:
            logits = logits[(slice(None), slice(None), *(slice(0, n) for n in extent))]
        if logits.ndim != ndim + 2 or logits.shape[0] != count or logits.shape[2:] != tile:
            raise ModelError(expected(f"logits of shape ({count}, K, {', '.join(map(str, tile))})", f"{logits.shape}"))
        yield batch, importance[tile], logits


def _accumulate(total: np.ndarray, weight_sum: np.ndarray, starts: np.ndarray, weights: np.ndarray, logits: np.ndarray) -> None:
    """Add weighted tile logits at ``starts`` (in the accumulators' own coordinates, clipped to them
    on both sides: a tile may start below 0 or end past the far edge)."""
    shape = weight_sum.shape
    tile = weights.shape
    for start, tile_logits in zip(starts, logits):
        inside = tuple(slice(max(int(s), 0), max(min(int(s) + t, n), 0)) for s, t, n in zip(start, tile, shape))
        local = tuple(slice(region.start - int(s), region.stop - int(s)) for region, s in zip(inside, start))
        if any(region.stop <= region.start for region in inside):
            continue
        total[(slice(None), *inside)] += tile_logits[(slice(None), *local)] * weights[local]
        weight_sum[inside] += weights[local]


def _blend(total: np.ndarray, weight_sum: np.ndarray, fill: float) -> np.ndarray:
    covered = weight_sum > 0
    np.divide(total, weight_sum, out=total, where=covered)
    total[:, ~covered] = fill
    return total


def merge_tiles(
    read_tiles: Callable[[slice], np.ndarray],
    starts: np.ndarray,
    shape: Sequence[int],
    tile_shape: Sequence[int] | np.ndarray,
    *,
    predictor: Predictor,
    prepare: Callable[[np.ndarray], np.ndarray] = _add_channel,
    restore: Callable[[np.ndarray], np.ndarray] | None = None,
    divisor: int = 1,
    weighting: str = "gaussian",
    batch_size: int = 4,
    fill: float = -np.inf,
    progress: Callable[[list], Iterable] = lambda items: items,
) -> np.ndarray:
    """Predict every tile and blend the logits into one array over ``shape``.

    Parameters
    ----------
    read_tiles : ``read_tiles(batch) -> (b, *tile_shape)`` the tiles at ``starts[batch]``
        (see :func:`tile_reader`; a stage may read them from a file instead)
    starts : (N, ndim) ndarray of int, tile corners in ``shape``'s coordinates
    shape : the output's spatial shape
    tile_shape : the shape of every tile, or (N, ndim) one per tile (fully convolutional
        networks); consecutive tiles of one shape are predicted together
    predictor : network input ``(b, C, ...)`` float32 -> logits ``(b, K, ...)``
    prepare : tiles -> network input (default: float32 with a channel axis); where the pipeline
        normalises intensities
    restore : network logits -> ``(b, K, *tile_shape)`` (default: the prediction itself, with
        the divisor padding cut off); for networks that see a resized tile
    divisor : spatial sizes of the network input are padded (reflecting) to multiples of it
    weighting : "gaussian" or "constant" importance within a tile
    fill : merged logit of a voxel no tile covers (-inf: probability 0 after a sigmoid)

    Returns
    -------
    logits : (K, *shape) ndarray of float32
    """
    shape = tuple(int(n) for n in shape)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1, len(shape))
    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    shapes = tile_shapes(tile_shape, len(starts), len(shape))
    total: np.ndarray | None = None
    weight_sum = np.zeros(shape, dtype=np.float32)
    for batch, weights, logits in _predicted_batches(read_tiles, shapes, progress(uniform_batches(shapes, batch_size)), predictor=predictor,
                                                     prepare=prepare, restore=restore, divisor=divisor, weighting=weighting, ndim=len(shape)):
        if total is None:
            total = np.zeros((logits.shape[1], *shape), dtype=np.float32)
        _accumulate(total, weight_sum, starts[batch], weights, logits)
    if total is None:
        return np.full((1, *shape), fill, dtype=np.float32)
    return _blend(total, weight_sum, fill)


def merge_tiles_by_rows(
    read_tiles: Callable[[slice], np.ndarray],
    starts: np.ndarray,
    shape: Sequence[int],
    tile_shape: Sequence[int] | np.ndarray,
    *,
    sink: Callable[[int, np.ndarray], None],
    predictor: Predictor,
    prepare: Callable[[np.ndarray], np.ndarray] = _add_channel,
    restore: Callable[[np.ndarray], np.ndarray] | None = None,
    divisor: int = 1,
    weighting: str = "gaussian",
    batch_size: int = 4,
    max_batch_voxels: int | None = None,
    fill: float = -np.inf,
    progress: Callable[[list], Iterable] = lambda items: items,
) -> None:
    """:func:`merge_tiles`, streamed along the first axis: blended rows are handed to
    ``sink(first_row, logits)`` (``logits`` (K, rows, *shape[1:]) float32, every row of ``shape[0]``
    exactly once, in order) as soon as no later tile reaches them. Only a slab as tall as the
    tallest tile is held, so a volume's logits never exist whole.

    ``starts`` must be ordered by their first coordinate (:func:`row_order` sorts tiles so); tiles
    of one batch share a shape and a first coordinate, and hold at most ``max_batch_voxels`` voxels
    (the network's activations grow with them: about 1 KB a voxel for a 3-D U-Net on CPU) unless a
    tile alone is larger. The blended values equal :func:`merge_tiles`'s.
    """
    shape = tuple(int(n) for n in shape)
    starts = np.asarray(starts, dtype=np.int64).reshape(-1, len(shape))
    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    if len(starts) and np.any(np.diff(starts[:, 0]) < 0):
        raise InputError(expected("tiles ordered by their first coordinate", "an unordered list"))
    shapes = tile_shapes(tile_shape, len(starts), len(shape))
    height = int(shapes[:, 0].max()) if len(shapes) else 1
    batches = uniform_batches(np.column_stack([starts[:, :1], shapes]), batch_size, max_voxels=max_batch_voxels,
                              voxels=np.prod(shapes, axis=1))  # one shape and one first row per batch

    total: np.ndarray | None = None
    weight_sum = np.zeros((height, *shape[1:]), dtype=np.float32)
    top = 0  # the first row the slab holds

    def flush(until: int) -> None:
        nonlocal top
        until = min(until, shape[0])
        while top < until:
            rows = min(until - top, height)
            if total is None:
                sink(top, np.full((1, rows, *shape[1:]), fill, dtype=np.float32))
            else:
                sink(top, _blend(total[:, :rows].copy(), weight_sum[:rows], fill))
                total[:, : height - rows] = total[:, rows:]
                total[:, height - rows :] = 0
            weight_sum[: height - rows] = weight_sum[rows:]
            weight_sum[height - rows :] = 0
            top += rows

    for batch, weights, logits in _predicted_batches(read_tiles, shapes, progress(batches), predictor=predictor, prepare=prepare,
                                                     restore=restore, divisor=divisor, weighting=weighting, ndim=len(shape)):
        flush(int(starts[batch.start, 0]))
        if total is None:
            total = np.zeros((logits.shape[1], height, *shape[1:]), dtype=np.float32)
        local_starts = starts[batch].copy()
        local_starts[:, 0] -= top
        _accumulate(total, weight_sum, local_starts, weights, logits)
    flush(shape[0])


def row_order(starts: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """The order of tiles for :func:`merge_tiles_by_rows`: by first coordinate, then by shape
    (so tiles of one row and shape form batches), then as given.

    Returns
    -------
    order : (N,) ndarray of int64, indices into ``starts``
    """
    starts, shapes = np.asarray(starts), np.asarray(shapes)
    keys = [np.arange(len(starts))] + [shapes[:, axis] for axis in range(shapes.shape[1] - 1, -1, -1)] + [starts[:, 0]]
    return np.lexsort(keys).astype(np.int64)
