import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.oct_glands.surface import detect_surface, guard_rows


def _step_volume(depths: np.ndarray, n_z: int = 20, low: int = 10, high: int = 200) -> np.ndarray:
    """Dark above ``depths[y, x]``, bright from it down."""
    z = np.arange(n_z)[None, :, None]
    return np.where(z >= depths[:, None, :], high, low).astype(np.uint8)


def test_surface_of_a_step_image_is_the_first_bright_voxel():
    depths = np.array([[5, 6, 7], [8, 9, 10]])
    surface = detect_surface(_step_volume(depths), method="paper")
    assert surface.dtype == np.int32 and surface.shape == (2, 3)
    np.testing.assert_array_equal(surface, depths)


def test_absolute_gradient_takes_the_strongest_edge_rising_only_ignores_falls():
    volume = np.full((1, 12, 1), 50, np.uint8)
    volume[0, 3:5, 0] = 250  # a bright glass plate: rise at z=3 (+200), fall at z=5 (-200)
    volume[0, 8:, 0] = 180  # the skin: rise of +130 at z=8
    assert detect_surface(volume, method="paper")[0, 0] == 3
    volume[0, 3:5, 0] = 20  # a dark plate: fall of -30 at z=3, rise at z=5 (+30)
    volume[0, 0:3, 0] = 220  # bright top: fall of -200 at z=3 dominates |G|
    assert detect_surface(volume, method="paper")[0, 0] == 3
    assert detect_surface(volume, method="paper", rising_only=True)[0, 0] == 8


def test_median_filter_rejects_an_outlier_column():
    depths = np.full((5, 5), 6)
    depths[2, 2] = 15
    np.testing.assert_array_equal(detect_surface(_step_volume(depths), method="paper", median_size=3), np.full((5, 5), 6))


def test_even_median_size_is_refused():
    with pytest.raises(InputError, match="odd median size"):
        detect_surface(np.zeros((2, 4, 2), np.uint8), median_size=2)


def spec_like_scan(seed=0, n_y=3, n_z=300, n_x=400, dropout_columns=()):
    """A B-scan stack with SPEC section 5's conditions, scaled to 400 px across.

    Speckle with std equal to its mean everywhere; air 3; a bright first row (44) and two
    slightly bright rows (7, 4); the surface sags 60 px across the B-scan with 2 px ridges; a
    12 px stratum-corneum band of mean 39, epidermis 10 down to 36 px, dermis 15 fading into the
    noise by 150 px. Returns ``(volume uint8, truth (Y, X))``.
    """
    rng = np.random.default_rng(seed)
    x = np.arange(n_x)
    truth = np.rint(120 + 60 * ((x - n_x / 2) / (n_x / 2)) ** 2 + 2 * np.sin(2 * np.pi * x / 40)).astype(int)
    truth = np.tile(truth, (n_y, 1))
    z = np.arange(n_z)[None, :, None]
    below = z - truth[:, None, :]
    mean = np.full((n_y, n_z, n_x), 3.0)
    mean[below >= 0] = 39.0
    mean[below >= 12] = 10.0
    dermis = below >= 36
    mean[dermis] = 3.0 + 12.0 * np.exp(-(below[dermis] - 36) / 40.0)
    mean[:, 0], mean[:, 1], mean[:, 2] = 44.0, 7.0, 4.0
    for column in dropout_columns:  # a shadowed A-scan: no tissue signal at all
        mean[:, 3:, column] = 3.0
    volume = np.clip(rng.exponential(mean), 0, 255).astype(np.uint8)
    return volume, truth


def test_robust_surface_is_within_5_px_on_spec_like_scans_where_the_paper_rule_fails():
    volume, truth = spec_like_scan()
    robust = detect_surface(volume)
    paper = detect_surface(volume, method="paper")
    assert np.mean(np.abs(robust - truth) <= 5) >= 0.95
    assert np.mean(np.abs(paper - truth) <= 5) < 0.5  # the artefact row or a speckle step wins


def test_a_shadowed_a_scan_takes_its_neighbours_depth():
    volume, truth = spec_like_scan(seed=1, dropout_columns=(100, 101, 102))
    surface = detect_surface(volume)
    assert np.all(np.abs(surface[:, 100:103] - truth[:, 100:103]) <= 5)


def test_guard_rows_are_the_leading_bright_rows_only():
    rows = np.array([44.0, 7, 4, 3, 3, 3, 39, 39, 10, 10] + [3.0] * 30)
    assert guard_rows(rows, air=3.0, threshold=15.0) == 1  # 7 is under halfway (9)
    assert guard_rows(np.full(40, 3.0), air=3.0, threshold=15.0) == 0


def test_robust_surface_of_a_clean_step_is_the_first_bright_voxel():
    depths = np.repeat([[8], [14]], 12, axis=1)  # B-scans apart: no smoothing across them
    depths[0, 6:] = 9  # a 1 px ridge
    volume = _step_volume(depths, n_z=40)
    np.testing.assert_array_equal(detect_surface(volume), depths)


def test_unknown_surface_method_is_refused():
    with pytest.raises(InputError, match="surface method among robust, paper"):
        detect_surface(np.zeros((2, 4, 2), np.uint8), method="largest")


@pytest.mark.parametrize("style", ["spec", "paper"])
def test_robust_surface_within_5_px_on_both_phantom_styles(style):
    """Issue 10's criterion: >= 95 % of A-scans within 5 px; measured 100 % on spec and paper
    phantoms (seeds 0-2), where the paper's rule reaches 5-62 % on spec and ~92 % on paper ones."""
    from medimg.oct_glands.phantom import STYLES, make_phantom

    shape = (32, 420, 160) if style == "spec" else (32, 128, 160)
    phantom = make_phantom(shape, seed=1, family=STYLES[style])
    error = np.abs(detect_surface(phantom.volume) - np.ceil(phantom.surface - 0.5))
    assert np.mean(error <= 5) >= 0.95
    if style == "spec":
        assert np.mean(np.abs(detect_surface(phantom.volume, method="paper") - np.ceil(phantom.surface - 0.5)) <= 5) < 0.5


def test_chunks_on_threads_give_the_serial_result(monkeypatch):
    import medimg.oct_glands.surface as surface_module

    volume, truth = spec_like_scan(seed=3, n_y=40)  # three chunks of up to 16 B-scans
    threaded = detect_surface(volume)
    monkeypatch.setattr(surface_module, "_MAX_THREADS", 1)
    np.testing.assert_array_equal(threaded, detect_surface(volume))
    assert np.mean(np.abs(threaded - truth) <= 5) > 0.9
