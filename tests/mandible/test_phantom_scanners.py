"""The wide and held-out head families: what differs between scanners and people, drawn and rendered."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common.families import read_params
from medimg.mandible.phantom import render
from medimg.mandible.phantom_family import FAMILIES, HELD_OUT_FAMILY, WIDE_FAMILY, HeadFamily, HeadParams

SCANNER_FIELDS = ("hu_offset", "kernel_sharpen", "noise_correlation_voxels", "beam_hardening_hu", "noise_hu")


def _draws(family: HeadFamily, count: int) -> list[HeadParams]:
    return [family.sample(np.random.default_rng(seed)) for seed in range(count)]


def _contains(range_, value) -> bool:
    return range_.contains(value) if hasattr(range_, "contains") else value == range_


def test_the_default_family_keeps_the_original_scanner():
    params = HeadFamily().sample(np.random.default_rng(0), shape=(12, 64, 64))
    assert (params.hu_offset, params.kernel_blur_voxels, params.kernel_sharpen) == (0.0, 0.6, 0.0)
    assert (params.slice_profile_voxels, params.noise_correlation_voxels, params.beam_hardening_hu) == (0.4, 0.7, 0.0)
    assert params.shape == (12, 64, 64)  # the caller's grid: the default family draws none


def test_held_out_scanner_settings_never_occur_in_the_wide_family():
    for params in _draws(HELD_OUT_FAMILY, 40):
        for name in SCANNER_FIELDS:
            assert not _contains(getattr(WIDE_FAMILY, name), getattr(params, name)), (name, getattr(params, name))
        assert not WIDE_FAMILY.slice_spacing_mm.contains(params.spacing[0])
        assert not WIDE_FAMILY.pixel_mm.contains(params.spacing[1])
        thickness = params.slice_profile_voxels * 2.3548 * params.spacing[0]
        assert not WIDE_FAMILY.slice_thickness_mm.contains(thickness) and 3.5 <= thickness <= 5.0


def test_the_wide_family_draws_its_grid_and_every_kind_of_mouth():
    draws = _draws(WIDE_FAMILY, 40)
    for params in draws:
        slices, rows, columns = params.shape
        assert rows == columns and 192 <= rows <= 640 and 24 <= slices <= 64
        pixel = params.spacing[1]
        assert 170.0 - pixel <= rows * pixel <= 250.0 + pixel or rows in (192, 640)  # the field of view, unless a bound clipped it
        assert 0.6 <= params.spacing[0] <= 3.0 and 0.3 <= params.spacing[1] == params.spacing[2] <= 1.0
        assert slices == int(np.clip(round(120.0 / params.spacing[0]), 24, 64))
    lower_teeth = [sum(t.present for t in p.teeth if not t.upper) for p in draws]
    assert min(lower_teeth) == 0  # edentulous heads
    assert max(lower_teeth) >= 13  # dentate ones
    assert any(3 <= n <= 11 for n in lower_teeth)  # partly edentulous


@pytest.fixture(scope="module")
def plain_head() -> HeadParams:
    """A small head on the original scanner, the base the scanner settings are changed from."""
    return HeadFamily().sample(np.random.default_rng(4), shape=(12, 64, 64))


def test_a_calibration_offset_shifts_every_voxel_by_it(plain_head):
    base = render(plain_head).hu.astype(np.int32)
    shifted = render(dataclasses.replace(plain_head, hu_offset=50.0)).hu.astype(np.int32)
    inside = (base > -1000 + 60) & (base < 3000)  # away from the clipping at both ends
    np.testing.assert_array_equal((shifted - base)[inside], 50)


def test_beam_hardening_darkens_soft_tissue_near_bone_only(plain_head):
    base = render(plain_head)
    shaded = render(dataclasses.replace(plain_head, beam_hardening_hu=60.0))
    difference = shaded.hu.astype(np.int32) - base.hu.astype(np.int32)
    assert difference.max() <= 1  # never brighter (rounding aside)
    assert difference.min() <= -40
    air = base.labels == 0
    from scipy import ndimage

    far_air = ndimage.binary_erosion(air, iterations=3)
    assert np.abs(difference[far_air]).max() <= 1  # air is left alone


def test_a_bone_kernel_sharpens_and_thick_slices_blur_across_slices(plain_head):
    base = render(plain_head).hu.astype(np.float64)
    sharp = render(dataclasses.replace(plain_head, kernel_sharpen=1.0, noise_hu=0.0)).hu.astype(np.float64)
    smooth = render(dataclasses.replace(plain_head, noise_hu=0.0)).hu.astype(np.float64)
    in_plane = lambda v: np.abs(np.diff(v, axis=2)).mean()  # noqa: E731
    assert in_plane(sharp) > 1.2 * in_plane(smooth)
    thick = render(dataclasses.replace(plain_head, slice_profile_voxels=1.5, noise_hu=0.0)).hu.astype(np.float64)
    across = lambda v: np.abs(np.diff(v, axis=0)).mean()  # noqa: E731
    assert across(thick) < 0.8 * across(smooth)
    assert base.shape == thick.shape


def test_synth_style_held_out_writes_its_drawn_grid(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["mandible", "synth", str(tmp_path / "head"), "--seed", "3", "--style", "held-out"])
    assert result.exit_code == 0, result.stderr
    params = read_params(tmp_path / "head" / "params.json", HeadParams)
    assert HELD_OUT_FAMILY.slice_spacing_mm.contains(params.spacing[0]) and HELD_OUT_FAMILY.pixel_mm.contains(params.spacing[1])
    assert len(list((tmp_path / "head" / "dicom").iterdir())) == params.shape[0]
    bad = runner.invoke(app, ["mandible", "synth", str(tmp_path / "x"), "--style", "bogus"])
    assert bad.exit_code == 2 and bad.stderr.strip() == f"Error: expected --style among {', '.join(FAMILIES)}, got 'bogus'"
