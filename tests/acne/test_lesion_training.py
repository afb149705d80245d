from pathlib import Path

import numpy as np
import pytest

from medimg.acne.dataset import load_split
from medimg.acne.lesion_training import (CALIBRATION_THRESHOLDS, LesionSamples, augment, lesion_loss, load_lesion_split, read_boxes, split_scores,
                                         train_lesion)
from medimg.common.errors import InputError

DATA = Path(__file__).parents[1] / "data" / "acne04_photos"
TINY = {"widths": [4, 8, 8, 8], "decoder_width": 8}


@pytest.fixture(scope="module")
def split():
    return load_lesion_split(DATA, load_split(DATA, 0, "test"), read_boxes(DATA / "boxes.csv"), size=64)


def test_boxes_are_read_per_photo_and_scaled_to_the_input(split):
    boxes = read_boxes(DATA / "boxes.csv")
    assert {name: len(b) for name, b in boxes.items()} == {
        "levle0_110_v2.jpg": 2, "levle1_101_v2.jpg": 8, "levle2_107_v2.jpg": 41, "levle3_105_v2.jpg": 52}
    assert split.images.shape == (4, 64, 64, 3)
    assert [len(b) for b in split.boxes] == split.counts.tolist() == [2, 8, 41, 52]
    assert np.allclose(split.boxes[0], boxes["levle0_110_v2.jpg"] / 10.0)  # 640 -> 64 pixels


def test_a_bad_box_table_is_an_input_error(tmp_path):
    (tmp_path / "boxes.csv").write_text("filename,xmin,ymin,xmax\na.jpg,1,2,3\n")
    with pytest.raises(InputError, match="without ymax"):
        read_boxes(tmp_path / "boxes.csv")
    with pytest.raises(InputError, match="no file"):
        read_boxes(tmp_path / "missing.csv")


def test_augmented_boxes_stay_in_the_image_and_only_lose_lesions_to_the_crop(split):
    rng = np.random.default_rng(0)
    for _ in range(20):
        image, boxes, dropped = augment(split.images[3], split.boxes[3], rng)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        assert image.shape == (64, 64, 3) and 0 <= image.min() and image.max() <= 255
        assert np.all((centres >= 0) & (centres <= 64))
        assert dropped == (len(boxes) < 52)


def test_samples_carry_targets_of_the_drawn_photo(split):
    samples = LesionSamples(split, length=4, seed=1, augmented=False)
    image, heatmap, size, mask, count_target, grade_target = samples[0]
    assert image.shape == (3, 64, 64) and heatmap.shape == mask.shape == (1, 16, 16) and size.shape == (2, 16, 16)
    pick = [len(b) for b in split.boxes].index(int(np.argmax(count_target)) + 1) if count_target.argmax() > 0 else 0
    assert mask.sum() <= len(split.boxes[pick])  # two centres in one cell share it
    assert grade_target.argmax() == split.grades[pick]
    assert samples[0][0].tobytes() == LesionSamples(split, length=4, seed=1, augmented=False)[0][0].tobytes()


def test_loss_is_lower_for_the_right_heat_map():
    import torch

    heatmap = torch.zeros(1, 1, 8, 8)
    heatmap[0, 0, 3, 3] = 1.0
    targets = (heatmap, torch.zeros(1, 2, 8, 8), heatmap.clone(), torch.full((1, 65), 1 / 65), torch.full((1, 4), 0.25))
    heads = (torch.zeros(1, 65), torch.zeros(1, 4))
    right = torch.where(heatmap > 0, 5.0, -5.0)
    wrong = torch.where(heatmap > 0, -5.0, 5.0)
    sizes = torch.zeros(1, 2, 8, 8)
    assert lesion_loss((*heads, right, sizes), targets) < lesion_loss((*heads, wrong, sizes), targets)


def test_split_scores_from_hand_made_heat_maps(split):
    n = len(split.counts)
    heatmaps = np.zeros((n, 16, 16), np.float32)
    for i, count in enumerate([2, 8, 21, 60]):  # detected counts: MAE (0 + 0 + 20 + 8) / 4 = 7
        cells = np.unravel_index(np.arange(count) * 4 % 256, (16, 16))  # every 4th cell: isolated peaks
        heatmaps[i][cells] = 0.9
    count_probs = np.zeros((n, 65), np.float32)
    count_probs[:, 1] = 1  # LDL count 2 everywhere
    grade_probs = np.eye(4, dtype=np.float32)[[0, 1, 1, 3]]
    scores = split_scores(split, count_probs, grade_probs, heatmaps, np.zeros((n, 2, 16, 16)), thresholds=(0.5,))
    assert scores["det0.5_mae"] == pytest.approx(7.0)
    assert scores["det0.5_acc"] == pytest.approx(1.0)  # 2 mild, 8 moderate, 21 severe, 60 very severe
    assert scores["ldl_count_mae"] == pytest.approx((0 + 6 + 39 + 50) / 4)
    assert scores["ldl_grade_acc"] == pytest.approx(0.75)


def test_one_training_step_writes_weights_that_rebuild_alone(tmp_path):
    from medimg.common.models import load_model

    result = train_lesion(DATA, tmp_path / "run", fold=0, epochs=1, batch_size=2, steps_per_epoch=1, size=64, config=TINY, device="cpu")
    assert set(result.history[0]) >= {"loss", "det0.3_mae", "det0.3_acc", "ldl_count_mae", "ldl_grade_acc"}
    loaded = load_model(result.weights)
    assert loaded.arch == "acne-lesion" and loaded.config == TINY
    assert loaded.preprocessing["input_size"] == 64
    # the threshold was chosen on the fold's training photos and stored with the answer rule
    assert loaded.metadata["threshold_chosen_on"] == "NNEW_trainval_0.txt"
    assert loaded.output["threshold"] in CALIBRATION_THRESHOLDS and loaded.output["test_flip"] is True
    assert (loaded.output["count_from"], loaded.output["grade_from"]) == ("mean", "count")


def test_without_validation_the_test_photos_are_never_read(tmp_path, monkeypatch):
    import medimg.acne.lesion_training as lesion_training

    real_load_split = lesion_training.load_split
    parts = []

    def spying_load_split(data_dir, fold, part):
        parts.append(part)
        return real_load_split(data_dir, fold, part)

    monkeypatch.setattr(lesion_training, "load_split", spying_load_split)
    result = train_lesion(DATA, tmp_path / "run", fold=0, epochs=1, batch_size=2, steps_per_epoch=1, size=64, config=TINY, device="cpu",
                          validate=False)
    assert "test" not in parts and "trainval" in parts
    assert "loss" in result.history[0] and not any(key.startswith(("det", "ldl_")) for key in result.history[0])
