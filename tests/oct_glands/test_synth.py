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
