import json

import numpy as np
import pytest
import torch
from PIL import Image

from medimg.common.errors import InputError
from medimg.common.models import load_model
from medimg.common.tables import read_csv
from medimg.common.training import TrainingSettings
from medimg.common.weights import load_weights, save_weights
from medimg.mandible.models import build_model
from medimg.mandible.train import (
    SliceSamples,
    TrainingCase,
    augment_slice,
    dicom_slice_name,
    find_cases,
    grey_to_hu,
    split_cases,
    train,
)
from tests.common.test_training import train_twice_with_cli

SIDE = 64


def disc(centre_row: int, centre_column: int, radius: int) -> np.ndarray:
    rows, columns = np.mgrid[:SIDE, :SIDE]
    return (rows - centre_row) ** 2 + (columns - centre_column) ** 2 <= radius**2


def write_image_case(case, *, labelme: bool) -> None:
    """Four 64 x 64 grey slices: a bright disc (the 'mandible') on grey, slice 3 without it."""
    (case / "images").mkdir(parents=True)
    (case / "masks").mkdir()
    for k in range(4):
        mask = disc(32, 20 + 6 * k, 10) if k < 3 else np.zeros((SIDE, SIDE), bool)
        grey = np.where(mask, 220, 60).astype(np.uint8)
        Image.fromarray(grey).save(case / "images" / f"{k:04d}.png")
        if labelme:
            angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
            points = [[20 + 6 * k + 10 * np.cos(a), 32 + 10 * np.sin(a)] for a in angles]
            shapes = [{"label": "mandible", "points": points, "shape_type": "polygon"}] if k < 3 else []
            (case / "masks" / f"{k:04d}.json").write_text(json.dumps({"shapes": shapes, "imageHeight": SIDE, "imageWidth": SIDE}))
        else:
            Image.fromarray(mask.astype(np.uint8) * 255).save(case / "masks" / f"{k:04d}.png")


@pytest.fixture
def image_data(tmp_path):
    data = tmp_path / "data"
    write_image_case(data / "png_case", labelme=False)
    write_image_case(data / "labelme_case", labelme=True)
    (data / "notes").mkdir()  # not a case: ignored
    return data


def test_train_writes_loadable_weights_and_resumes(tmp_path, image_data):
    # The smallest run that still trains, validates and resumes: 32 x 32 inputs, one batch of two per epoch.
    weights, rows = train_twice_with_cli([
        "--quiet", "mandible", "train", str(image_data), "-o", str(tmp_path / "run"), "--size", "32", "--width", "0.125",
        "--batch-size", "2", "--steps-per-epoch", "1", "--device", "cpu", "--arch", "cbam-unet", "--cbam-reduction", "4",
        "--cbam-kernel", "3"])
    assert 0.0 <= float(rows[-1]["val_dice"]) <= 1.0 and 0.0 <= float(rows[-1]["val_miou"]) <= 1.0
    loaded = load_model(weights=weights)
    assert loaded.arch == "mandible-cbam-unet" and not loaded.network.training
    preprocessing = loaded.preprocessing
    assert (preprocessing["input_size"], preprocessing["window_level"], preprocessing["window_width"]) == (32, 400.0, 2000.0)
    assert (loaded.config["width"], loaded.config["cbam_reduction"], loaded.config["cbam_kernel"]) == (0.125, 4, 3)
    metadata = loaded.metadata
    assert metadata["epochs_trained"] == "2" and metadata["validation_cases"] in ("png_case", "labelme_case")
    assert not {"model_config", "input_size", "window_level", "window_width"} & metadata.keys()  # all in the model header


def test_encoder_is_frozen_then_unfrozen_with_the_learning_rate_step(tmp_path, image_data):
    torch.manual_seed(5)
    pretrained = build_model("res-unet", width=0.125).state_dict()
    encoder_file = save_weights(tmp_path / "encoder.safetensors", pretrained, arch="pretrained")
    options = dict(arch="res-unet", width=0.125, input_size=32, freeze_epochs=1, batch_size=2, learning_rate=1e-3,
                   encoder_weights=encoder_file, steps_per_epoch=1, device="cpu", validation_fraction=0.0)

    def encoder_state(result):
        tensors, _ = load_weights(result.weights)
        return {key: value for key, value in tensors.items() if key.startswith("encoder.")}, tensors

    frozen = train(image_data, tmp_path / "run", epochs=1, **options)
    encoder, tensors = encoder_state(frozen)
    assert encoder  # every encoder tensor (BatchNorm statistics included) is the pretrained one
    for key, value in encoder.items():
        torch.testing.assert_close(value, pretrained[key], rtol=0, atol=0, msg=key)
    assert not torch.equal(tensors["head.weight"], build_model("res-unet", width=0.125).state_dict()["head.weight"])
    unfrozen = train(image_data, tmp_path / "run", epochs=2, **options)
    encoder_after, _ = encoder_state(unfrozen)
    assert not torch.equal(encoder_after["encoder.conv1.weight"], pretrained["encoder.conv1.weight"])
    assert [row["lr"] for row in read_csv(unfrozen.log)] == ["0.001", "0.0001"]


def test_transfer_schedule_steps_once():
    settings = TrainingSettings(epochs=100, steps_per_epoch=1, learning_rate=1e-4, lr_step_epochs=25, lr_gamma=0.1, lr_max_steps=1)
    assert [settings.learning_rate_at(e) for e in (0, 24, 25, 99)] == [1e-4, 1e-4, pytest.approx(1e-5), pytest.approx(1e-5)]
    assert TrainingSettings(epochs=3, steps_per_epoch=1, lr_step_epochs=0, lr_max_steps=1).learning_rate_at(2) == 1e-3


def test_augmentation_moves_image_and_mask_together():
    mask = disc(30, 36, 12)
    hu = np.where(mask, 1000.0, -1000.0).astype(np.float32)
    rng = np.random.default_rng(0)
    changed = 0
    for _ in range(10):
        moved, moved_mask = augment_slice(hu, mask, rng, level=400.0, width=2000.0)
        assert moved.shape == moved_mask.shape == (SIDE, SIDE) and moved.dtype == np.float32
        # bright <-> mask on all but the (interpolated) rim pixels
        assert np.mean((moved > 400.0) != moved_mask) < 0.01
        assert 0.75 < moved_mask.sum() / mask.sum() < 1.3  # scale 0.9..1.1 -> area 0.81..1.21
        changed += not np.array_equal(moved_mask, mask)
    assert changed == 10


def test_samples_are_mostly_mandible_slices():
    mask = np.zeros((10, SIDE, SIDE), bool)
    mask[4] = disc(32, 32, 8)  # 1 slice of 10 holds mandible
    case = TrainingCase("c", np.where(mask, 1000.0, -1000.0).astype(np.float32), mask, np.arange(10))
    always = SliceSamples([case], size=32, level=400.0, width=2000.0, positive_fraction=1.0, augment=False, length=6, seed=0)
    samples = [always[i] for i in range(len(always))]
    assert all(image.shape == (3, 32, 32) and target.shape == (1, 32, 32) for image, target in samples)
    assert all(target.sum() > 0 for _, target in samples)
    never = SliceSamples([case], size=32, level=400.0, width=2000.0, positive_fraction=0.0, augment=False, length=40, seed=0)
    drawn = [never[i][1].any() for i in range(len(never))]
    assert sum(drawn) < 15  # about 1 in 10


def test_case_discovery_and_splits(tmp_path, image_data):
    assert [p.name for p in find_cases(image_data)] == ["labelme_case", "png_case"]
    assert find_cases(image_data / "png_case") == [image_data / "png_case"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="expected case folders"):
        find_cases(tmp_path / "empty")
    cases = [TrainingCase(n, np.zeros((5, 2, 2), np.float32), np.zeros((5, 2, 2), bool), np.arange(5)) for n in "abcde"]
    kept, held = split_cases(cases, validation_fraction=0.2, seed=0)
    assert len(kept) == 4 and len(held) == 1 and {c.name for c in kept + held} == set("abcde")
    kept, held = split_cases(cases, validation_fraction=0.2, validation_cases=["b", "d"])
    assert [c.name for c in held] == ["b", "d"]
    with pytest.raises(InputError, match="expected validation cases among a, b, c, d, e, got z"):
        split_cases(cases, validation_fraction=0.2, validation_cases=["z"])
    kept, held = split_cases(cases[:1], validation_fraction=0.2)
    assert held[0].slices.tolist() == [0] and kept[0].slices.tolist() == [1, 2, 3, 4]


def test_grey_slices_window_back_to_their_grey_and_dicom_names():
    from medimg.mandible.preprocess import window

    grey = np.arange(256, dtype=np.uint8)
    np.testing.assert_allclose(window(grey_to_hu(grey, level=400.0, width=2000.0), level=400.0, width=2000.0), grey / 255.0, atol=1e-6)
    assert dicom_slice_name("dicom/IM0001.dcm") == "IM0001"
    assert dicom_slice_name("CT2/17106") == "17106"
    assert dicom_slice_name("1.2.840.113619.2.5") == "1.2.840.113619.2.5"


def test_a_synthetic_dicom_case_trains_as_it_is(synthetic_case, tmp_path):
    result = train(synthetic_case, tmp_path / "run", arch="unet", width=0.125, input_size=32, epochs=1, batch_size=2,
                   steps_per_epoch=1, device="cpu")
    (row,) = result.history
    assert row["epoch"] == 1 and "val_miou" in row  # one case: every 5th slice held out
    _, metadata = load_weights(result.weights)
    assert metadata["training_cases"] == metadata["validation_cases"] == "case"
