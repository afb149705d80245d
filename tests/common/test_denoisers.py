import numpy as np
import pytest

from medimg.common.denoisers import DENOISERS, build_denoiser, checked, region_sigma
from medimg.common.errors import InputError


def test_the_registry_builds_bm3d_with_its_options():
    assert "bm3d-reference" in DENOISERS
    rng = np.random.default_rng(0)
    clean = np.zeros((48, 48), np.float32)
    clean[:, 24:] = 0.6
    noisy = clean + rng.normal(0, 0.08, clean.shape).astype(np.float32)
    denoised = build_denoiser("bm3d-reference", stage="hard")(noisy, 0.08)
    assert denoised.dtype == np.float32 and denoised.shape == noisy.shape
    assert np.sqrt(np.mean((denoised - clean) ** 2)) < np.sqrt(np.mean((noisy - clean) ** 2)) / 2.5


def test_unknown_names_and_options_are_refused_by_name():
    with pytest.raises(InputError, match="expected a denoiser among bm3d-reference, got 'nlm'"):
        build_denoiser("nlm")
    with pytest.raises(InputError, match="expected bm3d-reference options among stage, got radius"):
        build_denoiser("bm3d-reference", radius=3)


def test_the_protocol_checks_inputs_and_output_shape():
    halve = checked(lambda image, sigma: image / 2)
    np.testing.assert_array_equal(halve(np.full((2, 3), 4, np.uint8), 1.0), np.full((2, 3), 2, np.float32))
    with pytest.raises(InputError, match="2-D image"):
        halve(np.zeros((1, 2, 3)), 1.0)
    with pytest.raises(InputError, match="noise sigma > 0"):
        halve(np.zeros((2, 3)), 0.0)
    with pytest.raises(InputError, match="denoised image of shape"):
        checked(lambda image, sigma: image[:1])(np.zeros((2, 3)), 1.0)


def test_region_sigma_is_the_std_inside_the_region_or_none_when_too_small():
    values = np.zeros((10, 10))
    values[:5] = np.tile([1.0, -1.0], 25).reshape(5, 10)  # std 1 in the top half
    region = np.zeros((10, 10), bool)
    region[:5] = True
    assert region_sigma(values, region, min_voxels=50) == pytest.approx(1.0)
    assert region_sigma(values, region, min_voxels=51) is None


def test_a_registered_denoiser_gets_only_the_options_it_declares(monkeypatch):
    from dataclasses import dataclass

    from medimg.common import denoisers
    from medimg.oct_glands.denoise import denoise_volume

    @dataclass(frozen=True)
    class NoOptions:
        pass

    registry = {**denoisers.DENOISERS, "identity": denoisers.DenoiserEntry(NoOptions, lambda options: lambda image, sigma: image)}
    monkeypatch.setattr(denoisers, "DENOISERS", registry)
    assert denoisers.denoiser_options("identity", stage="hard") == NoOptions()
    volume = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    np.testing.assert_array_equal(denoise_volume(volume, sigma=3.0, denoiser="identity", stage="hard"), volume)
