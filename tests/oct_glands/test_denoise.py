import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.denoise import denoise_volume
from medimg.oct_glands.intensity import from_unit, to_unit
from medimg.oct_glands.noise import estimate_noise_sigma


def _noisy_two_layer(sigma, seed=0, shape=(4, 60, 64)):
    rng = np.random.default_rng(seed)
    clean = np.full(shape, 40.0)
    clean[:, 30:, :] = 160.0  # skin from depth 30 on
    return clean, np.clip(np.rint(clean + rng.normal(0, sigma, shape)), 0, 255).astype(np.uint8)


def test_sigma_is_measured_in_the_air_above_the_skin():
    _, noisy = _noisy_two_layer(6.0)
    assert estimate_noise_sigma(noisy) == pytest.approx(6.0, rel=0.1)


def test_bm3d_removes_most_of_the_noise():
    clean, noisy = _noisy_two_layer(10.0)
    denoised = denoise_volume(noisy, sigma=10.0, stage="hard", rows="all")
    assert denoised.dtype == np.uint8 and denoised.shape == noisy.shape
    rmse_before = np.sqrt(np.mean((noisy - clean) ** 2))
    rmse_after = np.sqrt(np.mean((denoised.astype(float) - clean) ** 2))
    assert rmse_after < rmse_before / 2.5


def test_linear_domain_round_trips_through_the_log_transform():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(from_unit(to_unit(values, "linear"), "linear"), values)
    np.testing.assert_array_equal(from_unit(to_unit(values, "log"), "log"), values)


def test_bad_options_are_refused():
    volume = np.zeros((1, 8, 8), np.uint8)
    with pytest.raises(InputError, match="expected a domain among log, linear"):
        denoise_volume(volume, sigma=1, domain="db")
    with pytest.raises(InputError, match="expected a uint8 volume"):
        denoise_volume(volume.astype(np.float32), sigma=1)
    with pytest.raises(InputError, match="expected a denoiser among bm3d, bm3d-reference, got 'nlm'"):
        denoise_volume(volume, sigma=1, denoiser="nlm")
    with pytest.raises(InputError, match="expected a BM3D stage among full, hard"):
        denoise_volume(volume, sigma=1, stage="soft")


def test_noise_in_tissue_is_the_speckle_the_air_understates():
    """SPEC section 5's figures: air 3 with std 3, tissue speckle with std about its mean (10-40)."""
    from medimg.oct_glands.noise import estimate_noise_sigma, tissue_noise_sigma
    from tests.oct_glands.test_surface import spec_like_scan

    volume, _ = spec_like_scan(n_y=4)
    air = estimate_noise_sigma(volume)
    tissue = tissue_noise_sigma(volume)
    assert 2.0 <= air <= 8.0  # speckle of mean 3 in the air, plus the bright first row: 6.0 here
    assert 10.0 <= tissue <= 40.0 and tissue > 2 * air  # the epidermis' speckle: 12.4 here


def test_the_measured_sigma_is_the_chosen_regions_and_says_so_on_stderr(capsys):
    from medimg.oct_glands.noise import measure_noise_sigma, tissue_noise_sigma
    from tests.oct_glands.test_surface import spec_like_scan

    volume, _ = spec_like_scan(n_y=4)
    assert measure_noise_sigma(volume, region="tissue") == tissue_noise_sigma(volume)
    assert measure_noise_sigma(volume, region="air") == estimate_noise_sigma(volume)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "(speckle in the tissue below the surface)" in captured.err and "(air above the skin)" in captured.err


def test_an_unknown_noise_region_is_refused():
    from medimg.common.errors import OptionValueError

    with pytest.raises(OptionValueError, match="noise region among air, tissue"):
        denoise_volume(np.zeros((1, 8, 8), np.uint8), noise_region="skin")


def test_tissue_rows_span_the_surface_and_the_roi_below_it_with_a_margin():
    from medimg.oct_glands.denoise import tissue_rows

    surface = np.array([[30, 40, 35], [100, 90, 95], [0, 2, 1]])
    spans = tissue_rows(surface, 150, depth=80, margin=16)
    np.testing.assert_array_equal(spans, [[14, 136], [74, 150], [0, 98]])  # clipped to 0..150
    np.testing.assert_array_equal(tissue_rows(np.array([[149]]), 150, depth=0, margin=0), [[118, 150]])  # at least 32 rows


def test_only_the_tissue_rows_are_denoised():
    clean, noisy = _noisy_two_layer(10.0, shape=(2, 160, 64))  # skin from depth 30: rows 22..118 are denoised
    banded = denoise_volume(noisy, sigma=10.0, stage="hard", rows="tissue")
    np.testing.assert_array_equal(denoise_volume(noisy, sigma=10.0, stage="hard"), banded)  # a flat surface: the same band
    np.testing.assert_array_equal(banded[:, 130:], noisy[:, 130:])  # the deep rows keep their grey levels
    np.testing.assert_array_equal(banded[:, :10], noisy[:, :10])
    every_row = denoise_volume(noisy, sigma=10.0, stage="hard", rows="all")
    assert np.abs(every_row[:, 130:].astype(int) - noisy[:, 130:]).mean() > 3
    inside = (slice(None), slice(40, 110))  # away from the band's edges both see the same context
    assert np.abs(banded[inside].astype(int) - every_row[inside]).mean() < 1.0
    from medimg.common.errors import OptionValueError

    with pytest.raises(OptionValueError, match="--denoise-rows among tissue, surface, all, got 'some'"):
        denoise_volume(noisy, sigma=10.0, rows="some")


def test_surface_band_follows_the_smoothed_surface_and_covers_what_the_rois_read():
    from medimg.oct_glands.denoise import surface_band

    flat = np.full((2, 50), 40)
    flat[1] += 3  # the second B-scan's skin lies 3 rows deeper
    tops, height = surface_band(flat, 300, depth=80, margin=8)
    assert height == 3 + 80 + 2 * 8 and np.all(tops == 32)
    x = np.arange(400)
    sagging = np.rint(100 + 60 * ((x - 200) / 200) ** 2).astype(int)[None]  # 60 rows of sag across the B-scan
    tops, height = surface_band(sagging, 400, depth=80, margin=8)
    assert np.all(tops <= sagging[0] - 8) and np.all(tops + height >= sagging[0] + 88)
    assert 96 <= height <= 100  # a rectangle of rows would need 60 more
    assert np.abs(np.diff(tops)).max() <= 1  # smooth: an 8-wide block is shifted by about a row at most
    tops, height = surface_band(np.array([[5, 5], [290, 290]]), 300, depth=80, margin=8)
    assert height == 300 and np.all(tops == 0)  # never more rows than the B-scan has
    tops, height = surface_band(np.array([[5, 290]]), 300, depth=80, margin=8)
    assert height == 96 and tops.tolist() == [0, 204]  # a straight slope is followed exactly, then kept inside
    step = np.where(np.arange(400) < 200, 50, 150)
    step[100], step[300] = 150, 50  # stray columns the smoothing cannot follow
    tops, height = surface_band(step[None], 600, depth=80, margin=8)
    assert height == 150 + 88 - 42 and np.all(tops == 42)  # no taller than one rectangle of rows
    tops, height = surface_band(np.array([[280, 280]]), 300, depth=0, margin=0)
    assert height == 32 and np.all(tops == 268)  # at least 32 rows, inside the B-scan


def test_a_band_that_follows_the_surface_denoises_the_skin_below_a_curved_surface_only():
    rng = np.random.default_rng(3)
    x = np.arange(96)
    surface = np.rint(40 + 40 * ((x - 48) / 48) ** 2).astype(int)  # 40 rows of sag
    clean = np.where(np.arange(200)[None, :, None] >= surface[None, None, :], 160.0, 40.0).repeat(2, axis=0)
    noisy = np.clip(np.rint(clean + rng.normal(0, 10.0, clean.shape)), 0, 255).astype(np.uint8)
    followed = denoise_volume(noisy, sigma=10.0, stage="hard", rows="surface", device="cpu")  # one B-scan per batch
    every_row = denoise_volume(noisy, sigma=10.0, stage="hard", rows="all")
    from medimg.oct_glands.denoise import surface_band
    from medimg.oct_glands.surface import detect_surface

    detected = detect_surface(noisy)
    rows = np.arange(200)[:, None]
    for b in range(2):  # on the CPU our BM3D takes one B-scan at a time, each in its own band
        tops, height = surface_band(detected[b : b + 1], 200)
        assert height <= 96 + 8 and np.all(np.abs(tops - (surface - 8)) <= 8)  # a rectangle of rows would take 40 more
        band = (rows >= tops[None, :]) & (rows < tops[None, :] + height)
        np.testing.assert_array_equal(followed[b, ~band], noisy[b, ~band])  # air above and deep rows keep their levels
    inside = (np.arange(200)[:, None] >= surface[None, :] + 10) & (np.arange(200)[:, None] < surface[None, :] + 70)
    error = np.abs(followed[:, inside].astype(float) - clean[:, inside])
    assert error.mean() < np.abs(noisy[:, inside].astype(float) - clean[:, inside]).mean() / 2.5
    assert np.abs(followed[:, inside].astype(int) - every_row[:, inside]).mean() < 1.5


def test_in_place_denoising_writes_into_a_writable_volume_and_copies_a_read_only_one():
    _, noisy = _noisy_two_layer(10.0)
    expected = denoise_volume(noisy, sigma=10.0, stage="hard", rows="all")
    writable = noisy.copy()
    result = denoise_volume(writable, sigma=10.0, stage="hard", rows="all", in_place=True)
    assert result is writable
    np.testing.assert_array_equal(result, expected)
    read_only = noisy.copy()
    read_only.flags.writeable = False
    result = denoise_volume(read_only, sigma=10.0, stage="hard", rows="all", in_place=True)
    assert result is not read_only
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(read_only, noisy)
