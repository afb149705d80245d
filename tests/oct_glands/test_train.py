import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common.errors import InputError
from medimg.common.models import load_model
from medimg.oct_glands.losses import dice_loss_from_logits
from medimg.oct_glands.models import INPUT_PREPROCESSING
from medimg.oct_glands.train import augment, find_pairs
from tests.common.test_training import train_twice_with_cli

runner = CliRunner()


def test_augmentations_move_volume_and_mask_together_and_keep_depth():
    rng = np.random.default_rng(0)
    volume = rng.integers(0, 255, (6, 5, 7)).astype(np.uint8)
    mask = volume > 128
    seen = set()
    for _ in range(40):
        moved, moved_mask = augment(volume, mask, rng)
        np.testing.assert_array_equal(moved_mask, moved > 128)
        # depth stays axis 1 and keeps its direction: each depth slice keeps its histogram
        np.testing.assert_array_equal(np.sort(moved, axis=None), np.sort(volume, axis=None))
        for z in range(volume.shape[1]):
            np.testing.assert_array_equal(np.sort(moved[:, z].ravel()), np.sort(volume[:, z].ravel()))
        seen.add(moved.tobytes())
    assert len(seen) == 8  # 4 turns x 2 mirrors, all distinct for an asymmetric block


def test_pairs_need_their_masks(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"")
    with pytest.raises(InputError, match="expected a mask a_glands.tif beside a.tif"):
        find_pairs(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        find_pairs(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="NAME.tif \\+ NAME_glands.tif pairs"):
        find_pairs(tmp_path / "empty")


def test_train_writes_loadable_weights_and_resumes(tmp_path):
    data = tmp_path / "data"
    result = runner.invoke(app, ["--quiet", "oct", "synth", str(data / "f.tif"), "--shape", "80,96,80", "--seed", "5"])
    assert result.exit_code == 0, result.stderr
    weights, _ = train_twice_with_cli(["--quiet", "oct", "train", str(data), "-o", str(tmp_path / "run"), "--crop", "16",
                                       "--batch-size", "1", "--steps-per-epoch", "2", "--device", "cpu"])
    loaded = load_model(weights=weights)
    assert (loaded.arch, loaded.source, loaded.network.training) == ("oct-light", weights, False)
    assert loaded.preprocessing == INPUT_PREPROCESSING and loaded.metadata["epochs_trained"] == "2"


def test_train_fine_tunes_start_weights_of_its_model_and_refuses_another_model(tmp_path):
    data = tmp_path / "data"
    assert runner.invoke(app, ["--quiet", "oct", "synth", str(data / "f.tif"), "--shape", "80,96,80", "--seed", "5"]).exit_code == 0
    common = ["--quiet", "oct", "train", str(data), "--crop", "16", "--batch-size", "1", "--steps-per-epoch", "1", "--epochs", "1",
              "--device", "cpu", "--lr", "1e-12"]
    start = tmp_path / "light.safetensors"
    from medimg.common.models import arch_of, weights_metadata
    from medimg.common.weights import save_weights
    from medimg.oct_glands.models import build_model

    torch.manual_seed(123)
    network = build_model("light")
    save_weights(start, network.state_dict(), arch=arch_of("oct", "light"), metadata=weights_metadata(arch_of("oct", "light"), network))
    tuned = runner.invoke(app, [*common, "-o", str(tmp_path / "tuned"), "--start-weights", str(start)])
    assert tuned.exit_code == 0, tuned.stderr
    tuned_state = load_model(weights=tuned.stdout.split()[0]).network.state_dict()
    for key, value in network.state_dict().items():
        if value.is_floating_point():  # BatchNorm running statistics move in training mode; the weights barely do
            if "running" not in key:
                torch.testing.assert_close(tuned_state[key], value, rtol=0, atol=1e-6)
    wrong = runner.invoke(app, [*common, "-o", str(tmp_path / "wrong"), "--model", "standard", "--start-weights", str(start)])
    assert wrong.exit_code != 0 and wrong.stdout == ""
    assert wrong.stderr.startswith("Error: expected weights for architecture 'oct-standard'") and "Traceback" not in wrong.stderr


def test_dice_loss_takes_logits():
    target = torch.zeros(1, 1, 4, 4, 4)
    target[..., :2, :, :] = 1
    confident = torch.where(target > 0, 20.0, -20.0)
    assert dice_loss_from_logits(confident, target).item() == pytest.approx(0.0, abs=1e-6)
    assert dice_loss_from_logits(-confident, target).item() == pytest.approx(1 - 1 / 65, rel=1e-6)  # the smoothing term stays
    # logits of 0 are probabilities of one half: 1 - (2 * 16 + 1) / (16 + 32 + 1)
    assert dice_loss_from_logits(torch.zeros_like(target), target).item() == pytest.approx(1 - 33 / 49, rel=1e-6)


def test_intensity_augmentation_maps_block_and_levels_alike_then_scales():
    from medimg.oct_glands.intensity import scale_to_levels
    from medimg.oct_glands.train import grey_level_map, intensity_augment

    block = np.random.default_rng(1).integers(0, 256, (6, 6, 6)).astype(np.uint8)
    levels = (20.0, 80.0, 200.0)
    seen = []
    for seed in range(20):
        mapped = grey_level_map(np.random.default_rng(seed))(np.arange(256))
        assert np.all(np.diff(mapped) >= 0) and mapped.min() >= 0 and mapped.max() <= 255  # monotone grey-level map
        scaled = intensity_augment(block, levels, np.random.default_rng(seed))
        # the same draws without the noise step: the map of the block, scaled by the mapped levels
        rng = np.random.default_rng(seed)
        display = grey_level_map(rng)
        expected = scale_to_levels(display(block), tuple(display(np.asarray(levels, np.float32))))
        noisy = rng.random() < 0.5
        if not noisy:
            np.testing.assert_allclose(scaled, expected, atol=1e-6)
        else:
            assert 0 < np.abs(scaled - expected).max() < 1.0
        seen.append(noisy)
    assert any(seen) and not all(seen)


def test_resample_depth_interpolates_at_pixel_centres_and_keeps_the_mask_with_the_volume():
    from medimg.oct_glands.train import resample_depth

    volume = (np.arange(6, dtype=np.uint8) * 10)[None, :, None].repeat(2, axis=0).repeat(3, axis=2)
    mask = np.zeros_like(volume, dtype=bool)
    mask[:, 2:4] = True
    doubled, doubled_mask = resample_depth(volume, mask, 12)
    # centres of 12 rows over 6: 0.5 * k - 0.25, clipped to the first and last row
    np.testing.assert_array_equal(doubled[0, :, 0], [0, 2, 8, 12, 18, 22, 28, 32, 38, 42, 48, 50])
    np.testing.assert_array_equal(doubled_mask[0, :, 0], [False] * 4 + [True] * 4 + [False] * 4)  # 2 rows -> 4
    halved, halved_mask = resample_depth(volume, mask, 3)  # centres 0.5, 2.5, 4.5
    np.testing.assert_array_equal(halved[1, :, 2], [5, 25, 45])
    np.testing.assert_array_equal(halved_mask[1, :, 2], [False, True, False])
    same, same_mask = resample_depth(volume, mask, 6)
    assert same is volume and same_mask is mask


def test_axial_scale_stretches_the_blocks_depth_only():
    from medimg.oct_glands.train import TrainingCase, draw_axial_scale, parse_axial_scale, sample_block

    volume = np.broadcast_to(np.arange(120, dtype=np.uint8)[None, :, None], (80, 120, 80)).copy()
    case = TrainingCase("ramp", volume, volume > 200, np.array([[0, 20, 0]]), (10.0, 50.0, 90.0))
    for seed in range(6):
        block, glands, _ = sample_block([case], np.random.default_rng(seed), crop=16, axial_scale=(2.0, 2.0))
        assert block.shape == glands.shape == (16, 16, 16)
        steps = np.diff(block[0, :, 0].astype(int))
        assert steps.max() <= 1 and steps.sum() in (7, 8)  # 8 source rows spread over 16: depth stretched 2x
        block, _, _ = sample_block([case], np.random.default_rng(seed), crop=16, axial_scale=(0.5, 0.5))
        assert set(np.diff(block[0, :, 0].astype(int))) == {2}  # 32 rows read, every other one kept
        assert np.all(block == block[:1, :, :1])  # en-face axes untouched: each depth row is constant
    scales = [draw_axial_scale(np.random.default_rng(seed), (0.7, 2.0)) for seed in range(200)]
    assert 0.7 <= min(scales) < 0.8 and 1.8 < max(scales) <= 2.0
    assert np.median(np.log(scales)) == pytest.approx(np.log(np.sqrt(0.7 * 2.0)), abs=0.1)  # log-uniform
    assert parse_axial_scale("0.7,2") == (0.7, 2.0) and parse_axial_scale("1") == (1.0, 1.0)
    for text in ("a,b", "1,2,3", "nan", ""):
        with pytest.raises(InputError, match=f"expected --axial-scale LOW,HIGH of numbers, e.g. 0.7,2, got {text!r}"):
            parse_axial_scale(text)


def test_train_refuses_an_axial_scale_that_leaves_the_roi_or_does_not_parse(tmp_path):
    from medimg.oct_glands.train import check_axial_scale

    check_axial_scale((0.6, 12.0), crop=48)  # 80 rows read at the least, 4 at the most
    with pytest.raises(InputError, match=r"0.6 <= LOW <= HIGH <= 12 for crop 48 .*, got 0.5,2"):
        check_axial_scale((0.5, 2.0), crop=48)
    with pytest.raises(InputError, match="got 2,1"):
        check_axial_scale((2.0, 1.0), crop=48)
    result = runner.invoke(app, ["oct", "train", str(tmp_path), "--axial-scale", "0.7,2", "--device", "cpu"])  # crop 80
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith("Error: expected an axial scale range LOW,HIGH with 1 <= LOW <= HIGH <= 20 for crop 80")
    result = runner.invoke(app, ["oct", "train", str(tmp_path), "--axial-scale", "a,b", "--device", "cpu"])
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.splitlines() == ["Error: expected --axial-scale LOW,HIGH of numbers, e.g. 0.7,2, got 'a,b'"]


def test_loader_workers_draw_the_same_blocks_as_the_training_loop(tmp_path):
    from safetensors.numpy import load_file

    data = tmp_path / "data"
    assert runner.invoke(app, ["--quiet", "oct", "synth", str(data / "f.tif"), "--shape", "80,96,80", "--seed", "5"]).exit_code == 0
    weights = []
    for workers in ("0", "2"):
        result = runner.invoke(app, ["--quiet", "oct", "train", str(data), "-o", str(tmp_path / f"run{workers}"), "--crop", "16",
                                     "--batch-size", "2", "--steps-per-epoch", "2", "--epochs", "1", "--device", "cpu",
                                     "--loader-workers", workers])
        assert result.exit_code == 0, result.stderr
        weights.append(load_file(tmp_path / f"run{workers}" / "weights.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        np.testing.assert_allclose(weights[0][name], weights[1][name], rtol=1e-5, atol=1e-6, err_msg=name)
    result = runner.invoke(app, ["oct", "train", str(data), "--loader-workers", "-1", "--device", "cpu"])
    assert result.exit_code != 0 and "Error" in result.stderr and "Traceback" not in result.output
