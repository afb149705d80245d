import numpy as np
import pytest
from typer.testing import CliRunner

from medimg.cli import app
from medimg.common.errors import InputError
from medimg.common.tables import read_csv
from medimg.oct_glands.predictor import load_network
from medimg.oct_glands.train import augment, find_pairs

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
    common = ["--quiet", "oct", "train", str(data), "-o", str(tmp_path / "run"), "--crop", "16", "--batch-size", "1",
              "--steps-per-epoch", "2", "--device", "cpu"]
    first = runner.invoke(app, [*common, "--epochs", "1"])
    assert first.exit_code == 0, first.stderr
    weights, log = first.stdout.split()
    assert weights.endswith("weights.safetensors") and log.endswith("train_log.csv")
    second = runner.invoke(app, [*common, "--epochs", "2"])
    assert second.exit_code == 0, second.stderr
    assert [row["epoch"] for row in read_csv(log)] == ["1", "2"]
    network, source = load_network("light", weights=weights)
    assert source == weights and not network.training
