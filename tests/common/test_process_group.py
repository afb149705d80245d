"""Train commands under torchrun: 2 CPU ranks (gloo) train as one process does on the same global batches."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medimg.common.process_group import joined_process_group, launched_world_size

ROOT = Path(__file__).resolve().parents[2]


def torchrun(*arguments: str, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node nproc ...`` with this Python, the repo importable."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *arguments],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_outside_torchrun_nothing_changes(monkeypatch):
    import torch.distributed as dist

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launched_world_size() == 1
    with joined_process_group("auto") as device:
        assert device == "auto" and not dist.is_initialized()


def test_two_torchrun_ranks_write_the_weights_of_one_process(tmp_path):
    from tests.common.test_training import _train

    single, _ = _train(tmp_path / "single", 2, steps=3)
    completed = torchrun(str(ROOT / "tests" / "common" / "torchrun_line_fit.py"), str(tmp_path / "ddp"), str(tmp_path / "ddp.npy"), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    expected_weights = np.concatenate([single.weight.detach().numpy().ravel(), single.bias.detach().numpy()])
    np.testing.assert_allclose(np.load(tmp_path / "ddp.npy"), expected_weights, rtol=0, atol=1e-6)
    assert "world size 2: 3 steps per epoch of 16 samples (8 per rank) on cpu" in completed.stderr
    assert (tmp_path / "ddp" / "train_log.csv").read_text().count("\n") == 3


def test_oct_train_runs_under_torchrun_and_resumes(tmp_path):
    from typer.testing import CliRunner

    from medimg.cli import app
    from medimg.common.models import load_model
    from medimg.common.tables import read_csv

    data = tmp_path / "data"
    data.mkdir()
    assert CliRunner().invoke(app, ["oct", "synth", str(data / "v.tif"), "--shape", "80,112,80", "--seed", "3"]).exit_code == 0
    (data / "v_params.json").unlink()
    command = ["-m", "medimg", "oct", "train", str(data), "-o", str(tmp_path / "run"), "--steps-per-epoch", "2", "--batch-size", "2",
               "--crop", "16", "--device", "cpu"]

    first = torchrun(*command, "--epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # rank 0 alone prints its files and logs: one line each, not one per rank
    assert first.stdout.split() == [str(tmp_path / "run" / name) for name in ("weights.safetensors", "train_log.csv", "train_curves.png")]
    log_lines = [line for line in first.stderr.splitlines() if line.startswith("world size")]
    assert log_lines == ["world size 2: 2 steps per epoch of 2 samples (1 per rank) on cpu"]
    assert load_model(tmp_path / "run" / "weights.safetensors").arch == "oct-light"

    second = torchrun(*command, "--epochs", "2", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Resuming from" in second.stderr
    assert [row["epoch"] for row in read_csv(tmp_path / "run" / "train_log.csv")] == ["1", "2"]


def test_a_bad_world_size_is_a_clear_error(monkeypatch):
    from medimg.common.errors import DeviceError

    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DeviceError, match="expected WORLD_SIZE as an integer"):
        launched_world_size()
