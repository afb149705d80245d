"""Tests of ``write_synthetic_scan`` (medimg.oct_glands.synth)."""

from __future__ import annotations

import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.common.families import read_params
from medimg.common.volumes import read_volume
from medimg.oct_glands.phantom import FingertipParams, render
from medimg.oct_glands.synth import write_synthetic_scan


def test_writes_scan_truth_and_params_that_render_the_scan_again(tmp_path) -> None:
    paths = write_synthetic_scan(tmp_path / "p.tif", shape=(64, 96, 64), seed=3)
    assert [path.name for path in paths] == ["p.tif", "p_glands.tif", "p_pores.csv", "p_params.json"]
    params = read_params(paths[3], FingertipParams)
    assert params.shape == (64, 96, 64)
    again = render(params)
    np.testing.assert_array_equal(np.asarray(read_volume(paths[0])), again.volume)
    np.testing.assert_array_equal(np.asarray(read_volume(paths[1])), again.glands)
    assert len(paths[2].read_text().splitlines()) - 1 == len(again.pores)


def test_rejects_an_output_that_is_not_tif(tmp_path) -> None:
    with pytest.raises(InputError, match="expected an output path ending in .tif"):
        write_synthetic_scan(tmp_path / "p.nii", shape=(64, 96, 64), seed=0)


def test_spec_style_phantoms_look_like_the_real_scan_of_spec_section_5(tmp_path):
    """Measured on one spec-style phantom, against SPEC section 5 (real: air 3, first row 44,
    band 39, epidermis 10, ducts 1.3-2x their surroundings, robust surface within 5 px)."""
    import numpy as np

    from medimg.common.families import read_params
    from medimg.common.volumes import read_volume
    from medimg.oct_glands.phantom import FingertipParams, render
    from medimg.oct_glands.surface import detect_surface

    volume_path, glands_path, _, params_path = write_synthetic_scan(tmp_path / "s.tif", shape=(32, 420, 160), seed=2, style="spec")
    volume = read_volume(volume_path).astype(float)
    glands = read_volume(glands_path)
    params = read_params(params_path, FingertipParams)
    assert np.array_equal(render(params).volume, read_volume(volume_path))  # the parameters alone give it again
    surface = detect_surface(read_volume(volume_path))
    below = np.arange(volume.shape[1])[None, :, None] - surface[:, None, :]
    air = volume[(below < -10) & (np.arange(volume.shape[1])[None, :, None] > 5)].mean()
    band = volume[(below >= 1) & (below < 1 + params.entrance_thickness)].mean()
    epidermis = volume[(below >= params.entrance_thickness + 4) & (below < params.sc_thickness - 2) & (glands == 0)].mean()
    assert 1.5 <= air <= 7.0 and 25.0 <= band <= 55.0 and 6.0 <= epidermis <= 18.0
    assert band > 2.5 * epidermis and volume.mean() < 15.0
    if params.artefact_rows:
        assert volume[:, 0].mean() > 5 * air
    if glands.any():
        assert 1.2 <= volume[glands > 0].mean() / epidermis <= 2.2
    assert params.display_gain < 1.0 and params.entrance_thickness >= 7.0


def test_spec_style_needs_deep_b_scans(tmp_path):
    import pytest

    from medimg.common.errors import OptionValueError

    with pytest.raises(OptionValueError, match="at least 400 deep"):
        write_synthetic_scan(tmp_path / "s.tif", shape=(32, 128, 160), seed=0, style="spec")
    with pytest.raises(OptionValueError, match="--style among paper, spec, wide"):
        write_synthetic_scan(tmp_path / "s.tif", shape=(32, 420, 160), seed=0, style="real")
