"""The tiler: tile corners, importance maps, and the blend of tile logits."""

import math

import numpy as np
import pytest

from medimg.common.errors import InputError, ModelError
from medimg.common.tiling import grid_starts, importance_map, merge_tiles, tile_reader, tile_starts


def identity(batch):
    return batch


def _merge(volume, tile, stride, **kwargs):
    starts = grid_starts(volume.shape, tile, stride)
    return merge_tiles(tile_reader(volume, starts, tile), starts, volume.shape, tile, predictor=identity, **kwargs)


@pytest.mark.parametrize(
    ("extent", "tile", "stride", "expected"),
    [(100, 80, 40, [0, 20]), (80, 80, 40, [0]), (50, 80, 40, [0]), (200, 80, 40, [0, 40, 80, 120]), (10, 4, 3, [0, 3, 6])],
)
def test_tile_starts(extent, tile, stride, expected):
    starts = tile_starts(extent, tile, stride)
    assert starts.dtype == np.int64
    assert starts.tolist() == expected


@pytest.mark.parametrize(("tile", "stride"), [(0, 4), (4, 0)])
def test_tile_starts_refuses_sizes_below_one(tile, stride):
    with pytest.raises(InputError):
        tile_starts(10, tile, stride)


def test_grid_starts_is_in_raster_order():
    starts = grid_starts((100, 50), (80, 40), 40)
    assert starts.dtype == np.int64
    assert starts.tolist() == [[0, 0], [0, 10], [20, 0], [20, 10]]
    per_axis = grid_starts((200, 100, 80), (80, 80, 40), (40, 40, 40))
    assert len(per_axis) == 4 * 2 * 2
    assert per_axis[:3].tolist() == [[0, 0, 0], [0, 0, 40], [0, 20, 0]]
    assert per_axis[-1].tolist() == [120, 20, 40]


def test_grid_starts_refuses_mismatched_axes():
    with pytest.raises(InputError, match="2 axes"):
        grid_starts((10, 10), (4,), 2)


def test_gaussian_importance_peaks_at_one_in_the_centre_and_is_symmetric():
    weights = importance_map((9, 9))
    assert weights.dtype == np.float32 and weights.shape == (9, 9)
    assert weights[4, 4] == 1.0 and weights.max() == 1.0
    np.testing.assert_array_equal(weights, weights[::-1])
    np.testing.assert_array_equal(weights, weights[:, ::-1])
    np.testing.assert_array_equal(weights, weights.T)
    # sigma = 9 / 8: one voxel from the centre weighs exp(-1/2 (8/9)^2)
    assert weights[4, 5] == pytest.approx(math.exp(-0.5 * (8 / 9) ** 2), rel=1e-6)


def test_gaussian_importance_is_floored_at_a_thousandth():
    weights = importance_map((64, 64, 16))
    assert weights.min() == pytest.approx(1e-3)
    assert weights.max() == pytest.approx(1.0)
    even = importance_map((8,))
    np.testing.assert_array_equal(even, even[::-1])
    assert even.max() == 1.0 and even[3] == even[4] == 1.0


def test_constant_importance_is_all_ones():
    weights = importance_map((3, 4, 5), "constant")
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, np.ones((3, 4, 5)))


def test_unknown_weighting_is_an_input_error():
    with pytest.raises(InputError, match="gaussian, constant"):
        importance_map((4,), "hann")


def test_tile_reader_reads_windows_and_pads_with_the_edge():
    volume = np.arange(12, dtype=np.float32).reshape(3, 4)
    read = tile_reader(volume, np.array([[0, 0], [1, 2], [2, 3]]), (2, 2))
    tiles = read(slice(0, 3))
    assert tiles.shape == (3, 2, 2)
    assert tiles[0].tolist() == [[0, 1], [4, 5]]
    assert tiles[1].tolist() == [[6, 7], [10, 11]]
    assert tiles[2].tolist() == [[11, 11], [11, 11]]
    assert read(slice(3, 3)).shape == (0, 2, 2)


@pytest.mark.parametrize("weighting", ["gaussian", "constant"])
def test_identity_predictor_reproduces_a_2d_input(weighting):
    volume = np.random.default_rng(0).normal(size=(30, 37)).astype(np.float32)
    merged = _merge(volume, (16, 16), 8, weighting=weighting, batch_size=3)
    assert merged.shape == (1, 30, 37) and merged.dtype == np.float32
    np.testing.assert_allclose(merged[0], volume, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(merged[0, -1, :], volume[-1, :], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(merged[0, :, -1], volume[:, -1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weighting", ["gaussian", "constant"])
def test_identity_predictor_reproduces_a_3d_input(weighting):
    volume = np.random.default_rng(1).normal(size=(11, 13, 9)).astype(np.float32)
    merged = _merge(volume, (6, 8, 4), (3, 5, 2), weighting=weighting)
    assert merged.shape == (1, 11, 13, 9)
    np.testing.assert_allclose(merged[0], volume, rtol=1e-5, atol=1e-6)
    assert merged[0, -1, -1, -1] == pytest.approx(volume[-1, -1, -1], rel=1e-5)


def test_voxels_no_tile_covers_get_fill():
    volume = np.ones((6, 6), dtype=np.float32)
    starts = np.array([[0, 0]])
    read = tile_reader(volume, starts, (4, 4))
    merged = merge_tiles(read, starts, volume.shape, (4, 4), predictor=identity)
    np.testing.assert_allclose(merged[0, :4, :4], 1.0)
    assert np.isneginf(merged[0, 4:, :]).all() and np.isneginf(merged[0, :, 4:]).all()
    filled = merge_tiles(read, starts, volume.shape, (4, 4), predictor=identity, fill=-7.0)
    assert (filled[0, 4:, :] == -7.0).all()
    assert (filled[0, :4, :4] == 1.0).all()


def test_no_tiles_at_all_gives_fill_everywhere():
    volume = np.ones((3, 3), dtype=np.float32)
    starts = np.zeros((0, 2), dtype=np.int64)
    merged = merge_tiles(tile_reader(volume, starts, (2, 2)), starts, (3, 3), (2, 2), predictor=identity, fill=0.0)
    assert merged.shape == (1, 3, 3) and (merged == 0.0).all()


def test_volume_smaller_than_the_tile_is_padded_and_cropped_back():
    volume = np.arange(30, dtype=np.float32).reshape(5, 6)
    seen = []

    def predictor(batch):
        seen.append(batch.shape)
        return batch

    starts = grid_starts(volume.shape, (8, 8), 4)
    assert starts.tolist() == [[0, 0]]
    merged = merge_tiles(tile_reader(volume, starts, (8, 8)), starts, volume.shape, (8, 8), predictor=predictor)
    assert seen == [(1, 1, 8, 8)]
    assert merged.shape == (1, 5, 6)
    np.testing.assert_allclose(merged[0], volume, rtol=1e-6)


def test_divisor_padding_gives_the_predictor_divisible_sizes_and_stays_exact():
    volume = np.random.default_rng(2).normal(size=(23, 29)).astype(np.float32)
    tile = (10, 13)
    seen = []

    def predictor(batch):
        seen.append(batch.shape)
        return batch * 2.0

    starts = grid_starts(volume.shape, tile, (5, 7))
    merged = merge_tiles(tile_reader(volume, starts, tile), starts, volume.shape, tile, predictor=predictor, divisor=4)
    assert seen and all(shape[2:] == (12, 16) for shape in seen)
    np.testing.assert_allclose(merged[0], 2.0 * volume, rtol=1e-5, atol=1e-6)


def test_several_logit_channels_are_blended_alike():
    volume = np.random.default_rng(3).normal(size=(12, 12)).astype(np.float32)
    starts = grid_starts(volume.shape, (8, 8), 4)
    merged = merge_tiles(
        tile_reader(volume, starts, (8, 8)), starts, volume.shape, (8, 8),
        predictor=lambda batch: np.concatenate([batch, -batch, np.ones_like(batch)], axis=1),
    )
    assert merged.shape == (3, 12, 12)
    np.testing.assert_allclose(merged[0], volume, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(merged[1], -volume, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(merged[2], 1.0, rtol=1e-6)


def test_restore_maps_the_network_output_back_onto_the_tile():
    volume = np.arange(16, dtype=np.float32).reshape(4, 4)
    starts = np.array([[0, 0]])
    merged = merge_tiles(
        tile_reader(volume, starts, (4, 4)), starts, (4, 4), (4, 4),
        predictor=lambda batch: batch[:, :, ::2, ::2],  # a network that sees a half-size tile
        restore=lambda logits: logits.repeat(2, axis=2).repeat(2, axis=3),
    )
    assert merged[0].tolist() == [[0, 0, 2, 2], [0, 0, 2, 2], [8, 8, 10, 10], [8, 8, 10, 10]]


@pytest.mark.parametrize(
    "bad",
    [lambda batch: batch[:, :, :-1], lambda batch: batch[:1], lambda batch: batch[..., None]],
    ids=["short-tile", "fewer-items", "extra-axis"],
)
def test_predictor_returning_the_wrong_shape_is_a_model_error(bad):
    volume = np.zeros((8, 8), dtype=np.float32)
    starts = grid_starts(volume.shape, (4, 4), 4)
    with pytest.raises(ModelError, match=r"logits of shape \(4, K, 4, 4\)"):
        merge_tiles(tile_reader(volume, starts, (4, 4)), starts, volume.shape, (4, 4), predictor=bad, batch_size=4)


def test_predictor_returning_logits_without_a_channel_axis_is_a_model_error():
    volume = np.zeros((8, 8), dtype=np.float32)
    starts = grid_starts(volume.shape, (4, 4), 4)
    with pytest.raises(ModelError, match=r"logits of shape \(4, K, 4, 4\)"):
        merge_tiles(tile_reader(volume, starts, (4, 4)), starts, volume.shape, (4, 4),
                    predictor=lambda batch: batch[:, 0], batch_size=4)


def test_batch_size_below_one_is_an_input_error():
    starts = np.array([[0]])
    with pytest.raises(InputError):
        merge_tiles(tile_reader(np.zeros(4), starts, (4,)), starts, (4,), (4,), predictor=identity, batch_size=0)


def _two_constant_tiles(weighting):
    """Tiles [0, 8) and [4, 12) of a 12-voxel line whose logits are 0 and 1 respectively."""
    starts = np.array([[0], [4]])

    def predictor(batch):
        return np.stack([np.zeros((1, 8)), np.ones((1, 8))]).astype(np.float32)

    return merge_tiles(tile_reader(np.zeros(12), starts, (8,)), starts, (12,), (8,),
                       predictor=predictor, weighting=weighting, batch_size=2)[0]


def test_constant_weighting_blends_two_overlapping_tiles_by_their_mean():
    merged = _two_constant_tiles("constant")
    np.testing.assert_allclose(merged, [0, 0, 0, 0, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1], rtol=1e-6)


def test_gaussian_weighting_favours_the_tile_whose_centre_is_nearer():
    merged = _two_constant_tiles("gaussian")
    np.testing.assert_allclose(merged[:4], 0.0, atol=1e-7)
    np.testing.assert_allclose(merged[8:], 1.0, rtol=1e-6)
    # voxel 4: centre of tile 0 (weight 1), edge of tile 1 (3.5 voxels off a sigma-1 centre)
    w_edge = math.exp(-0.5 * 3.5**2) / math.exp(-0.5 * 0.5**2)
    assert merged[4] == pytest.approx(w_edge / (1 + w_edge), rel=1e-4)
    assert merged[7] == pytest.approx(1 / (1 + w_edge), rel=1e-4)
    assert merged[5] == pytest.approx(1 - merged[6], rel=1e-4)  # symmetric about the overlap's middle
    assert np.all(np.diff(merged[4:8]) > 0)
    assert not np.allclose(merged, _two_constant_tiles("constant"))


def test_tiles_of_several_shapes_are_batched_by_shape_and_blended():
    from medimg.common.tiling import uniform_batches

    volume = np.arange(12 * 10, dtype=np.float32).reshape(12, 10)
    starts = np.array([[0, 0], [0, 4], [6, 0], [4, 4]])
    shapes = np.array([[6, 6], [6, 6], [6, 4], [8, 6]])
    calls = []

    def identity_logging(batch):
        calls.append(batch.shape)
        return batch

    merged = merge_tiles(tile_reader(volume, starts, shapes), starts, volume.shape, shapes, predictor=identity_logging, batch_size=4)
    np.testing.assert_allclose(merged[0], volume)  # every voxel covered, the same value from each tile
    assert calls == [(2, 1, 6, 6), (1, 1, 6, 4), (1, 1, 8, 6)]
    assert uniform_batches(np.array([[2], [2], [2], [3], [2]]), 2) == [slice(0, 2), slice(2, 3), slice(3, 4), slice(4, 5)]


def test_one_shape_per_tile_must_match_the_tiles():
    from medimg.common.tiling import tile_shapes

    assert tile_shapes((3, 4), 2, 2).tolist() == [[3, 4], [3, 4]]
    with pytest.raises(InputError, match=r"expected a tile shape of 2 sizes >= 1, or one per tile \(3, 2\)"):
        tile_shapes(np.ones((2, 2)), 3, 2)


def test_merging_by_rows_streams_exactly_what_merge_tiles_blends():
    from medimg.common.tiling import merge_tiles_by_rows, row_order

    volume = np.random.default_rng(0).random((37, 20, 25)).astype(np.float32)
    starts = np.array([[20, 5, 0], [0, 0, 0], [5, 0, 3], [0, 2, 10], [20, 0, 12], [30, 3, 5]])
    shapes = np.array([[8, 10, 10], [8, 10, 10], [10, 10, 10], [8, 12, 10], [8, 10, 10], [7, 8, 9]])
    order = row_order(starts, shapes)
    assert order.tolist() == [1, 3, 2, 0, 4, 5]  # by first row, then by shape
    starts, shapes = starts[order], shapes[order]
    predictor = lambda batch: 2 * batch - 1
    whole = merge_tiles(tile_reader(volume, starts, shapes), starts, volume.shape, shapes, predictor=predictor, batch_size=2)
    streamed, runs = np.full_like(whole, 7.0), []

    def sink(first, logits):
        streamed[:, first : first + logits.shape[1]] = logits
        runs.append((first, logits.shape[1]))

    merge_tiles_by_rows(tile_reader(volume, starts, shapes), starts, volume.shape, shapes, sink=sink, predictor=predictor, batch_size=2)
    np.testing.assert_array_equal(streamed, whole)
    # rows leave as soon as no later tile reaches them: before each new first row, then the rest
    assert runs == [(0, 5), (5, 10), (15, 5), (20, 10), (30, 7)]
    with pytest.raises(InputError, match="ordered by their first coordinate"):
        merge_tiles_by_rows(tile_reader(volume, starts[::-1], shapes[::-1]), starts[::-1], volume.shape, shapes[::-1], sink=sink,
                            predictor=predictor)


def test_batches_share_a_shape_and_stay_under_a_voxel_budget():
    from medimg.common.tiling import uniform_batches

    shapes = np.array([[2, 2, 2]] * 5 + [[4, 4, 4]] * 3)  # 8 and 64 voxels
    assert uniform_batches(shapes, 4) == [slice(0, 4), slice(4, 5), slice(5, 8)]
    # 16 voxels: two small tiles a batch; a large tile alone exceeds the budget and goes alone
    assert uniform_batches(shapes, 4, max_voxels=16) == [slice(0, 2), slice(2, 4), slice(4, 5), slice(5, 6), slice(6, 7), slice(7, 8)]
    assert uniform_batches(shapes, 4, max_voxels=128) == [slice(0, 4), slice(4, 5), slice(5, 7), slice(7, 8)]


def test_tile_reader_mirrors_the_volume_about_its_edge_for_tiles_that_start_before_it():
    volume = np.arange(12, dtype=np.float32).reshape(3, 4)  # rows [0 1 2 3], [4 5 6 7], [8 9 10 11]
    starts = np.array([[-1, -2], [1, 3]])
    reflected = tile_reader(volume, starts, (3, 3), beyond="reflect")(slice(0, 2))
    # row -1 mirrors row 1, columns -2, -1 mirror columns 2, 1; past the far edges likewise
    assert reflected[0].tolist() == [[6, 5, 4], [2, 1, 0], [6, 5, 4]]
    assert reflected[1].tolist() == [[7, 6, 5], [11, 10, 9], [7, 6, 5]]
    repeated = tile_reader(volume, starts, (3, 3))(slice(0, 2))
    assert repeated[0].tolist() == [[0, 0, 0], [0, 0, 0], [4, 4, 4]]


def test_tile_reader_refuses_an_unknown_edge_rule_and_a_tile_wholly_outside():
    from medimg.common.errors import OptionValueError

    volume = np.zeros((4, 4), np.float32)
    with pytest.raises(OptionValueError, match="beyond among edge, reflect"):
        tile_reader(volume, np.array([[0, 0]]), (2, 2), beyond="wrap")
    with pytest.raises(InputError, match="wholly outside"):
        tile_reader(volume, np.array([[-3, 0]]), (2, 2), beyond="reflect")(slice(0, 1))


def test_tiles_that_start_before_the_volume_are_blended_on_the_part_inside_it():
    volume = np.random.default_rng(1).random((10, 12)).astype(np.float32)
    starts = np.array([[-3, -3], [-3, 5], [4, -3], [4, 5]])  # 7 x 8 tiles over a field widened by 3
    merged = merge_tiles(tile_reader(volume, starts, (7, 8), beyond="reflect"), starts, volume.shape, (7, 8),
                         predictor=identity, weighting="constant")
    np.testing.assert_allclose(merged[0], volume, rtol=1e-6)  # every voxel covered, each copy of the input
    ones = merge_tiles(lambda batch: np.ones((batch.stop - batch.start, 7, 8), np.float32), starts, volume.shape, (7, 8),
                       predictor=lambda batch: np.where(batch > 0, 2.0, 0.0).astype(np.float32))
    assert ones.shape == (1, 10, 12) and np.all(ones == 2.0)


def test_merging_by_rows_takes_tiles_that_start_before_the_first_row():
    from medimg.common.tiling import merge_tiles_by_rows

    volume = np.random.default_rng(2).random((9, 6, 7)).astype(np.float32)
    starts = np.array([[-2, 0, -2], [-2, 0, 3], [4, 0, -2], [4, 0, 3]])
    whole = merge_tiles(tile_reader(volume, starts, (7, 6, 6), beyond="reflect"), starts, volume.shape, (7, 6, 6), predictor=identity)
    streamed = np.full_like(whole, np.nan)

    def sink(first, logits):
        streamed[:, first : first + logits.shape[1]] = logits

    merge_tiles_by_rows(tile_reader(volume, starts, (7, 6, 6), beyond="reflect"), starts, volume.shape, (7, 6, 6), sink=sink,
                        predictor=identity)
    np.testing.assert_array_equal(streamed, whole)
    np.testing.assert_allclose(whole[0], volume, rtol=1e-6)
