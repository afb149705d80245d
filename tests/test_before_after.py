"""Outputs before and after the common ML layer (model contract, tiler, activation in one place).

The reference files in ``tests/data`` were written by the pipelines of commit 9093d86, the last
before the common layer, with the shipped weights (whose tensors are unchanged since):

* ``oct_before_after.npz``: a 84 x 112 x 124 fingertip phantom (old generator, seed 31), BM3D-denoised
  as ``extract`` does (``denoised``), its true glands (``truth``) and the old pipeline's glands
  (``before``): blocks on the paper's stride-40 grid, probabilities averaged, Otsu, pruning;
* ``mandible_before_after.npz``: pydicom's real ``CT_small.dcm`` through ``mandible segment``
  (``before_mask``) and its slice probabilities (``before_probability``, float16);
* ``acne_before_after.json``: ``acne grade`` records of scikit-image's astronaut and coffee photos.

OCT changes on purpose (blocks now reach the far edges, logits are blended with Gaussian weights),
so its test asks for "unchanged or better" against the truth; acne and mandible must not change.
The OCT weights the reference was written with are kept as ``oct_light_2026-11-27.safetensors``
(shipped until the weights trained on the wide phantom family replaced them).
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1)


def test_oct_glands_are_as_good_or_better_and_the_far_edge_is_now_predicted():
    from medimg.common.tiling import tile_reader
    from medimg.oct_glands.inference import InferenceOptions, oct_network, predict_probability
    from medimg.oct_glands.prune import label_glands
    from medimg.oct_glands.roi import BLOCK_SIZE, roi_corners
    from medimg.oct_glands.surface import detect_surface
    from medimg.oct_glands.threshold import binarize

    reference = np.load(DATA / "oct_before_after.npz")
    volume, truth, before = reference["denoised"], reference["truth"], reference["before"]
    corners = roi_corners(detect_surface(volume), volume.shape)
    probability = predict_probability(tile_reader(volume, corners, (BLOCK_SIZE,) * 3), corners, volume.shape, block_size=BLOCK_SIZE,
                                      predictor=oct_network(InferenceOptions(weights=DATA / "oct_light_2026-11-27.safetensors", device="cpu")))
    after = label_glands(binarize(probability)[0]) > 0

    old_grid_end = 40 + BLOCK_SIZE  # the paper's grid: x* = 0, 40; nothing past x = 120 of 124
    assert not before[:, :, old_grid_end:].any()
    # every A-scan of the far strip now lies in a block: a whole block's depth of defined probability
    assert ((probability[:, :, old_grid_end:] > 0).sum(axis=1) >= BLOCK_SIZE).all()
    assert dice(after, truth) >= dice(before, truth) - 0.005
    assert dice(after, truth) > 0.85
    assert dice(after[:, :, :old_grid_end], before[:, :, :old_grid_end]) > 0.9  # the same glands where both predicted


def test_mandible_probabilities_of_a_real_ct_slice_are_unchanged():
    from pydicom.data import get_testdata_file

    from medimg.common.dicom_series import read_ct_series
    from medimg.mandible.inference import InferenceOptions, mandible_network, network_settings, predict_volume
    from medimg.mandible.postprocess import mask_from_probabilities

    reference = np.load(DATA / "mandible_before_after.npz")
    with tempfile.TemporaryDirectory() as scratch:  # pydicom's data folder holds many series: read this one alone
        shutil.copy(get_testdata_file("CT_small.dcm"), scratch)
        series = read_ct_series(scratch)
    network = mandible_network(InferenceOptions(device="cpu"))
    settings = network_settings(network)
    probability = predict_volume(series.volume, network, **settings.predict_options())
    before = reference["before_probability"].astype(np.float32)
    # logits are now resampled to the CT grid before the sigmoid, not probabilities after it
    assert np.abs(probability - before).max() < 0.02 and np.abs(probability - before).mean() < 1e-3
    mask, _ = mask_from_probabilities(probability, threshold=0.5, keep_largest=True)
    assert np.count_nonzero(mask ^ reference["before_mask"]) <= 2


def test_acne_grades_of_real_photos_are_unchanged():
    import skimage.data

    from medimg.acne.inference import InferenceOptions
    from medimg.acne.pipeline import grade_files

    photos = [Path(skimage.data.data_dir) / name for name in ("astronaut.png", "coffee.png")]
    # the fusion (no longer the default since the real-photo lesion network shipped) must not change
    records = grade_files(photos, options=InferenceOptions(model="fusion", device="cpu")).results
    for record, before in zip(records, json.loads((DATA / "acne_before_after.json").read_text()), strict=True):
        assert {k: record[k] for k in ("count", "grade", "count_grade", "cou2cls_grade")} == {
            k: before[k] for k in ("count", "grade", "count_grade", "cou2cls_grade")}
        for column in ("p_mild", "p_moderate", "p_severe", "p_very_severe"):
            assert record[column] == pytest.approx(before[column], rel=1e-4, abs=1e-7)
