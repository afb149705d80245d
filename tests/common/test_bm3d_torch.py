"""Our BM3D in torch against hand-worked cases and the ``bm3d`` package on a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from medimg.common.bm3d_torch import (
    BLOCK,
    BM3DParameters,
    _bior15_matrix,
    _haar_matrix,
    _match_blocks,
    bm3d_torch,
)
from medimg.common.errors import InputError


def _psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((estimate - clean) ** 2)))


@pytest.fixture(scope="module")
def camera_crop() -> np.ndarray:
    from skimage import data

    return data.camera()[180:276, 200:296].astype(np.float32) / 255.0  # 96 x 96: the photographer's head and coat


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32])
def test_haar_matrices_are_orthonormal(n: int) -> None:
    haar = _haar_matrix(n)
    np.testing.assert_allclose(haar @ haar.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(haar[0], np.full(n, 1 / np.sqrt(n)))  # the group mean comes first


def test_bior15_rows_are_unit_norm_and_the_transform_inverts() -> None:
    matrix = _bior15_matrix(8)
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0)
    np.testing.assert_allclose(matrix[0], np.full(8, 1 / np.sqrt(8)))  # approximation: the mean
    np.testing.assert_allclose(matrix[4], [1 / np.sqrt(2), -1 / np.sqrt(2), 0, 0, 0, 0, 0, 0])  # finest detail: Haar
    # the level-2 detail of bior1.5 is Haar's with the five-tap correction of its dual: 0.5694, 0.4023, ...
    np.testing.assert_allclose(matrix[2, :4], [0.5694, 0.4023, -0.4023, -0.5694], atol=1e-4)
    signal = np.arange(8.0) ** 2
    np.testing.assert_allclose(np.linalg.solve(matrix, matrix @ signal), signal, atol=1e-10)


def _brute_force_matches(image: np.ndarray, *, search: int, step: int, max_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Every reference block's distances to each candidate in its window, in plain loops."""
    height, width = image.shape
    radius = search // 2
    refs = [(y, x) for y in range(0, height - BLOCK + 1, step) for x in range(0, width - BLOCK + 1, step)]
    nearest_positions, nearest_distances = [], []
    for y, x in refs:
        block = image[y : y + BLOCK, x : x + BLOCK].astype(np.float64)
        candidates = []
        for cy in range(max(0, y - radius), min(height - BLOCK, y + radius) + 1):
            for cx in range(max(0, x - radius), min(width - BLOCK, x + radius) + 1):
                distance = -1.0 if (cy, cx) == (y, x) else float(((image[cy : cy + BLOCK, cx : cx + BLOCK] - block) ** 2).sum())
                candidates.append((distance, cy * width + cx))
        candidates.sort()
        nearest_distances.append([d for d, _ in candidates[:max_group]])
        nearest_positions.append([p for _, p in candidates[:max_group]])
    return np.array(nearest_positions), np.array(nearest_distances)


@pytest.mark.parametrize(("height", "width", "step", "search", "max_group", "tile"),
                         [(40, 40, 4, 35, 8, 4), (29, 41, 3, 9, 16, 4), (20, 44, 4, 11, 8, 3), (9, 9, 1, 5, 4, 2), (8, 30, 2, 39, 8, 4)])
def test_matches_are_the_nearest_blocks_found_by_brute_force(height: int, width: int, step: int, search: int, max_group: int, tile: int) -> None:
    import torch

    image = np.random.default_rng(height * width).random((height, width)).astype(np.float32)  # no ties among distances
    threshold = 4.0
    positions, sizes = _match_blocks(torch.from_numpy(np.stack([image, image[::-1].copy()])), max_group=max_group,
                                     threshold=threshold, search=search, step=step, tile=tile)
    for index, picture in enumerate([image, image[::-1].copy()]):
        expected_positions, expected_distances = _brute_force_matches(picture, search=search, step=step, max_group=max_group)
        found = min(max_group, expected_positions.shape[1])
        np.testing.assert_array_equal(positions[index, :, :found].numpy(), expected_positions[:, :found])
        within = np.maximum((expected_distances[:, :found] <= threshold).sum(axis=1), 1)
        np.testing.assert_array_equal(sizes[index].numpy(), 2 ** np.floor(np.log2(within)).astype(int))


def test_a_copied_block_is_found_at_its_offset() -> None:
    import torch

    rng = np.random.default_rng(0)
    image = rng.random((40, 40)).astype(np.float32)
    image[20:28, 24:32] = image[8:16, 12:20]  # reference block at (8, 12) has an exact twin 12 down, 12 right
    positions, sizes = _match_blocks(torch.from_numpy(image)[None], max_group=4, threshold=0.5, step=4)
    reference = (8 // 4) * ((40 - BLOCK) // 4 + 1) + 12 // 4  # row-major index on the stride-4 grid
    assert positions[0, reference, 0].item() == 8 * 40 + 12  # the block itself leads
    assert positions[0, reference, 1].item() == 20 * 40 + 24  # then its twin (distance 0)
    assert sizes[0, reference].item() == 2  # random blocks are farther than 0.5 apart: only the pair is grouped


def test_a_clean_constant_image_comes_back_unchanged() -> None:
    image = np.full((29, 35), 0.4, np.float32)
    np.testing.assert_allclose(bm3d_torch(image, 0.05), image, atol=1e-5)


def test_shapes_off_the_grid_keep_their_shape_and_batches_match_single_images(camera_crop: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    noisy = camera_crop[:45, :61] + rng.normal(0, 0.08, (45, 61)).astype(np.float32)
    single = bm3d_torch(noisy, 0.08)
    assert single.shape == (45, 61) and single.dtype == np.float32
    batch = bm3d_torch(np.stack([noisy, noisy[::-1].copy()]), 0.08)
    np.testing.assert_allclose(batch[0], single, atol=1e-5)
    np.testing.assert_allclose(batch[1], bm3d_torch(noisy[::-1].copy(), 0.08), atol=1e-5)


def test_within_a_few_tenths_of_a_db_of_the_bm3d_package_on_a_real_photo(camera_crop: np.ndarray) -> None:
    import bm3d

    sigma = 20 / 255
    noisy = (camera_crop + np.random.default_rng(2).normal(0, sigma, camera_crop.shape)).astype(np.float32)
    reference = bm3d.bm3d(noisy.astype(np.float64), sigma_psd=sigma)
    ours = bm3d_torch(noisy, sigma)
    hard_only = bm3d_torch(noisy, sigma, stage="hard")
    assert _psnr(noisy, camera_crop) == pytest.approx(22.1, abs=0.2)
    assert _psnr(ours, camera_crop) > _psnr(noisy, camera_crop) + 6.0
    assert _psnr(ours, camera_crop) > _psnr(hard_only, camera_crop)  # the Wiener stage adds to the first
    assert abs(_psnr(ours, camera_crop) - _psnr(reference, camera_crop)) < 0.3
    # the package's own search (39 x 39 every 3 pixels) lands closer still
    faithful = bm3d_torch(noisy, sigma, parameters=BM3DParameters(step_hard=3, step_wiener=3, search_window=39))
    assert abs(_psnr(faithful, camera_crop) - _psnr(reference, camera_crop)) < 0.25


def test_images_smaller_than_a_block_are_refused() -> None:
    with pytest.raises(InputError, match="at least 8 x 8 pixels"):
        bm3d_torch(np.zeros((5, 40), np.float32), 0.1)


@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_cuda_gives_the_cpu_result(camera_crop: np.ndarray) -> None:
    import torch

    noisy = camera_crop + np.random.default_rng(3).normal(0, 0.08, camera_crop.shape).astype(np.float32)
    on_gpu = bm3d_torch(torch.from_numpy(noisy).cuda(), 0.08)
    assert on_gpu.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.cpu().numpy(), bm3d_torch(noisy, 0.08), atol=2e-3)
