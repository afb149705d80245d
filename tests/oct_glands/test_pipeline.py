import json

import numpy as np
import pytest

from medimg.common.errors import InputError
from medimg.common.tables import read_csv
from medimg.common.volumes import read_volume
from medimg.oct_glands.pipeline import DenoiseOptions, ExtractOptions, extract

from .conftest import BIG_CUBES


def bright_voxels(batch):
    """Logits of a "network" that calls every voxel of intensity >= 200 (of 255) a gland."""
    return np.where(batch >= 200 / 255, 10.0, -10.0).astype(np.float32)


def test_extract_finds_the_two_big_cubes_and_prunes_the_small_one(tmp_path, toy_scan):
    options = ExtractOptions(denoise=DenoiseOptions(enabled=False))
    result = extract(toy_scan, tmp_path / "out", options=options, predictor=bright_voxels)
    pores = read_csv(result.pores_csv)
    centres = sorted((float(p["x"]), float(p["y"]), float(p["z"])) for p in pores)
    assert centres == sorted((x + 3.5, y + 3.5, z + 3.5) for y, z, x in BIG_CUBES)
    assert [int(p["volume_voxels"]) for p in pores] == [512, 512]
    labels = read_volume(result.glands_tif)
    assert labels.shape == (80, 100, 120) and labels.max() == 2
    summary = json.loads(result.summary_json.read_text())
    assert summary["blocks"] == 2 and summary["pores"] == 2
    assert 0 < summary["threshold"] <= 1
    assert set(summary["seconds_per_stage"]) == {"surface", "crop", "infer", "threshold", "prune", "project"}
    png = result.fingerprint_png
    assert png.exists() and png.stat().st_size > 0


def test_a_shallow_volume_is_refused_before_any_output(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "thin.tif", np.zeros((80, 60, 80), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match=r"expected a volume at least 80 voxels deep \(Z\), got 60"):
        extract(tmp_path / "thin.tif", tmp_path / "out", options=ExtractOptions(), predictor=bright_voxels)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_band_tiling_finds_the_same_glands_as_the_papers_blocks(tmp_path, toy_scan):
    paper = extract(toy_scan, tmp_path / "paper", options=ExtractOptions(denoise=DenoiseOptions(enabled=False)), predictor=bright_voxels)
    band = extract(toy_scan, tmp_path / "band", options=ExtractOptions(denoise=DenoiseOptions(enabled=False), tiling="band"),
                   predictor=bright_voxels)
    np.testing.assert_array_equal(read_volume(band.glands_tif), read_volume(paper.glands_tif))
    band_pores, paper_pores = read_csv(band.pores_csv), read_csv(paper.pores_csv)
    # the band path holds probabilities as uint8 codes (p = code / 255): means within half a code
    assert [float(p.pop("mean_probability")) for p in band_pores] == pytest.approx(
        [float(p.pop("mean_probability")) for p in paper_pores], abs=0.5 / 255)
    assert band_pores == paper_pores
    summary = json.loads(band.summary_json.read_text())
    # surface at z = 10: Y starts 0; X starts 0, 40 (the last ends at 120); 80 + 2 x 8 rows -> 96
    assert summary["tiling"] == "band" and summary["blocks"] == 2


def test_band_tiles_over_a_mirrored_field_margin_find_the_same_glands(tmp_path, toy_scan):
    plain = extract(toy_scan, tmp_path / "plain", options=ExtractOptions(denoise=DenoiseOptions(enabled=False)), predictor=bright_voxels)
    widened = extract(toy_scan, tmp_path / "widened", options=ExtractOptions(denoise=DenoiseOptions(enabled=False), field_margin=16),
                      predictor=bright_voxels)
    np.testing.assert_array_equal(read_volume(widened.glands_tif), read_volume(plain.glands_tif))
    # the field widened to 112 x 152: Y starts -16, 16; X starts -16, 48, 56
    assert json.loads(widened.summary_json.read_text())["blocks"] == 6
    with pytest.raises(InputError, match="field margin >= 0"):
        ExtractOptions(field_margin=-1)


def test_an_unknown_tiling_is_an_option_error():
    from medimg.common.errors import OptionValueError

    with pytest.raises(OptionValueError, match=r"expected --tiling among paper, band, got 'fast'"):
        ExtractOptions(tiling="fast")


@pytest.mark.parametrize(("sigma", "stages"), [(None, {"noise", "denoise"}), (6.0, {"denoise"})])
def test_a_measured_noise_sigma_is_timed_as_its_own_stage(tmp_path, toy_scan, sigma, stages):
    """The sigma comes from a fixed sample of B-scans, so benchmarks scale it apart from denoising."""
    from medimg.common.volumes import write_volume

    clean = np.asarray(read_volume(toy_scan), dtype=np.float32)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 6, clean.shape), 0, 255).astype(np.uint8)
    scan = write_volume(tmp_path / "noisy.tif", noisy)
    result = extract(scan, tmp_path / "out", options=ExtractOptions(denoise=DenoiseOptions(sigma=sigma, stage="hard")),
                     predictor=bright_voxels)
    seconds = json.loads(result.summary_json.read_text())["seconds_per_stage"]
    assert set(seconds) == stages | {"surface", "crop", "infer", "threshold", "prune", "project"}


def unsure_bright_voxels(batch):
    """Like ``bright_voxels`` but unsure: probability 0.6 (logit 0.405) on the bright voxels."""
    return np.where(batch >= 200 / 255, np.log(0.6 / 0.4), -10.0).astype(np.float32)


@pytest.mark.parametrize("min_probability, pores, dropped", [(0.0, 2, 0), (0.55, 2, 0), (0.7, 0, 2)])
def test_glands_the_network_is_unsure_of_are_dropped_below_the_minimum_mean_probability(tmp_path, toy_scan, min_probability, pores, dropped):
    options = ExtractOptions(denoise=DenoiseOptions(enabled=False), min_probability=min_probability)
    result = extract(toy_scan, tmp_path / "out", options=options, predictor=unsure_bright_voxels)
    found = read_csv(result.pores_csv)
    assert len(found) == pores
    assert all(float(p["mean_probability"]) == pytest.approx(0.6, abs=1e-4) for p in found)
    assert read_volume(result.glands_tif).max() == pores
    summary = json.loads(result.summary_json.read_text())
    assert summary["faint_glands_dropped"] == dropped and summary["pores"] == pores


@pytest.mark.parametrize("min_depth, kept_z, dropped", [(0, [30, 40], 0), (27, [30, 40], 0), (28, [40], 1), (38, [], 2)])
def test_glands_that_stay_near_the_surface_are_dropped_below_the_minimum_depth(tmp_path, toy_scan, min_depth, kept_z, dropped):
    # surface at z = 10; the cubes span z 30..37 and 40..47: depths 20..27 and 30..37, 64 voxels each,
    # so the 90th percentile (rank 459 of 512) is 27 and 37
    options = ExtractOptions(denoise=DenoiseOptions(enabled=False), min_depth=min_depth)
    result = extract(toy_scan, tmp_path / "out", options=options, predictor=bright_voxels)
    found = read_csv(result.pores_csv)
    assert sorted(round(float(p["z"]) - 3.5) for p in found) == kept_z
    assert sorted(int(p["depth_reached"]) for p in found) == [z - 3 for z in kept_z]
    summary = json.loads(result.summary_json.read_text())
    assert summary["shallow_glands_dropped"] == dropped and summary["faint_glands_dropped"] == 0
    assert read_volume(result.glands_tif).max() == len(kept_z)
    with pytest.raises(InputError, match="min-depth >= 0"):
        ExtractOptions(min_depth=-1)


def test_a_minimum_probability_outside_0_1_is_an_option_error():
    from medimg.common.errors import OptionValueError

    with pytest.raises(OptionValueError, match="min-probability in \\[0, 1\\]"):
        ExtractOptions(min_probability=1.5)
