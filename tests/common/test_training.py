import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from medimg.common.errors import InputError
from medimg.common.sampling import EpochSeededDataset
from medimg.common.training import TrainingSettings, fit
from medimg.common.weights import load_weights

BATCH = 16


def train_twice_with_cli(command: list[str]) -> tuple[str, list[dict[str, str]]]:
    """Run a group's ``train`` command for 1 epoch, then again for 2 (a resume); shared by the
    groups' train tests. Returns the weights path printed and the log's rows."""
    from typer.testing import CliRunner

    from medimg.cli import app
    from medimg.common.tables import read_csv

    runner = CliRunner()
    first = runner.invoke(app, [*command, "--epochs", "1"])
    assert first.exit_code == 0, first.stderr
    weights, log, curves = first.stdout.split()
    assert weights.endswith("weights.safetensors") and log.endswith("train_log.csv") and curves.endswith("train_curves.png")
    assert Path(curves).parent == Path(log).parent
    second = runner.invoke(app, [*command, "--epochs", "2"])
    assert second.exit_code == 0, second.stderr
    rows = read_csv(log)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    return weights, rows


class LinePoints(EpochSeededDataset):
    """Points of y = 3x - 1, x uniform in [-1, 1]: ``((1,), (1,))`` float32."""

    def draw(self, index, rng):
        x = rng.uniform(-1, 1, size=1).astype(np.float32)
        return x, 3 * x - 1


def loss_fn(model, batch):
    x, y = batch
    return torch.mean((model(x) - y) ** 2)


def _train(run_dir, epochs, *, resume=True, steps=20, num_workers=0, learning_rate=0.1, start_weights=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    settings = TrainingSettings(epochs=epochs, steps_per_epoch=steps, learning_rate=learning_rate, lr_step_epochs=2, lr_gamma=0.5, seed=1)
    dataset = LinePoints(settings.samples_per_epoch(BATCH), seed=settings.seed)
    result = fit(model, dataset=dataset, batch_size=BATCH, num_workers=num_workers, loss_fn=loss_fn, settings=settings, run_dir=run_dir,
                 arch="toy", device=torch.device("cpu"), resume=resume, start_weights=start_weights)
    return model, result


def test_start_weights_fine_tune_a_trained_model_and_a_resume_keeps_its_own_state(tmp_path):
    _, trained = _train(tmp_path / "trained", 4)
    # a negligible learning rate leaves the start weights as they were: the model is the file it started from
    tuned, result = _train(tmp_path / "tuned", 1, learning_rate=1e-12, start_weights=trained.weights)
    start, _ = load_weights(trained.weights)
    torch.testing.assert_close(tuned.weight.detach(), start["weight"], rtol=0, atol=1e-9)
    assert load_weights(result.weights)[1]["start_weights"] == "weights.safetensors"
    # from random layers the same run keeps its random weights, far from y = 3x - 1
    untouched, _ = _train(tmp_path / "random", 1, learning_rate=1e-12)
    assert abs(untouched.weight.item() - 3.0) > 1.0
    # a resumed run continues from its checkpoint, not from the start weights
    _train(tmp_path / "untuned", 1, learning_rate=1e-12)
    resumed, _ = _train(tmp_path / "untuned", 2, learning_rate=1e-12, start_weights=trained.weights)
    torch.testing.assert_close(resumed.weight.detach(), untouched.weight.detach(), rtol=0, atol=1e-9)


def test_start_weights_of_another_architecture_are_refused(tmp_path):
    from medimg.common.errors import ModelError
    from medimg.common.weights import save_weights

    other = save_weights(tmp_path / "other.safetensors", {"weight": torch.zeros(1, 1), "bias": torch.zeros(1)}, arch="other")
    with pytest.raises(ModelError, match="architecture 'toy'"):
        _train(tmp_path / "run", 1, start_weights=other)
    mis_shaped = save_weights(tmp_path / "wide.safetensors", {"weight": torch.zeros(2, 1), "bias": torch.zeros(2)}, arch="toy")
    with pytest.raises(ModelError, match="another shape"):
        _train(tmp_path / "run2", 1, start_weights=mis_shaped)


def test_training_learns_and_logs_each_epoch(tmp_path):
    model, result = _train(tmp_path, 4)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4]
    assert [row["lr"] for row in result.history] == [0.1, 0.1, 0.05, 0.05]
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert model.weight.item() == pytest.approx(3.0, abs=0.2)
    assert result.log.read_text().splitlines()[0] == "epoch,lr,loss,seconds"
    assert result.weights.exists() and result.checkpoint.exists()


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    straight, _ = _train(tmp_path / "straight", 4)
    _train(tmp_path / "split", 2)
    resumed, result = _train(tmp_path / "split", 4)
    assert result.resumed_from_epoch == 2
    torch.testing.assert_close(resumed.weight, straight.weight, rtol=0, atol=0)
    torch.testing.assert_close(resumed.bias, straight.bias, rtol=0, atol=0)
    assert load_weights(tmp_path / "split" / "weights.safetensors")[0].keys() == {"weight", "bias"}


def test_a_resumed_two_epoch_run_writes_the_weights_of_an_uninterrupted_one(tmp_path):
    _train(tmp_path / "straight", 2, steps=3)
    _train(tmp_path / "split", 1, steps=3)
    _, result = _train(tmp_path / "split", 2, steps=3)
    assert result.resumed_from_epoch == 1 and [row["epoch"] for row in result.history] == [1, 2]
    straight, _ = load_weights(tmp_path / "straight" / "weights.safetensors")
    resumed, metadata = load_weights(result.weights)
    assert metadata["epochs_trained"] == "2"
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)


def test_samples_do_not_depend_on_the_number_of_workers(tmp_path):
    in_process, _ = _train(tmp_path / "zero", 1, steps=3)
    with_worker, _ = _train(tmp_path / "one", 1, steps=3, num_workers=1)
    torch.testing.assert_close(with_worker.weight, in_process.weight, rtol=0, atol=0)


def test_each_sample_has_its_own_epoch_seeded_generator():
    points = LinePoints(8, seed=3)
    first = [points[i][0].item() for i in range(8)]
    assert [points[i][0].item() for i in reversed(range(8))] == first[::-1]  # order of drawing is irrelevant
    points.set_epoch(1)
    assert [points[i][0].item() for i in range(8)] != first
    assert points[5][0].item() == np.float32(np.random.default_rng([3, 1, 5]).uniform(-1, 1))
    with pytest.raises(IndexError):
        points[8]


def test_fit_refuses_a_dataset_that_does_not_fit_the_epoch(tmp_path):
    settings = TrainingSettings(epochs=1, steps_per_epoch=2, seed=1)
    common = dict(batch_size=4, loss_fn=loss_fn, settings=settings, run_dir=tmp_path, arch="toy", device=torch.device("cpu"))
    with pytest.raises(InputError, match="expected a dataset of steps per epoch x batch size = 8 samples, got 7"):
        fit(torch.nn.Linear(1, 1), dataset=LinePoints(7, seed=1), **common)
    with pytest.raises(InputError, match="expected a dataset seeded with the run's seed 1, got 2"):
        fit(torch.nn.Linear(1, 1), dataset=LinePoints(8, seed=2), **common)
    with pytest.raises(InputError, match="expected an epoch-seeded dataset"):
        fit(torch.nn.Linear(1, 1), dataset=list(range(8)), **common)


def test_the_first_log_line_states_the_world_size(tmp_path, capsys):
    _train(tmp_path, 1, steps=1)
    assert capsys.readouterr().err.splitlines()[0].startswith("world size 1: 1 steps per epoch of 16 samples")


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="expected epochs >= 1"):
        TrainingSettings(epochs=0, steps_per_epoch=1)
    with pytest.raises(InputError, match="expected a seed >= 0, got -1"):
        TrainingSettings(epochs=1, steps_per_epoch=1, seed=-1)


def test_lr_max_steps_caps_the_step_schedule():
    every = TrainingSettings(epochs=90, steps_per_epoch=1, learning_rate=1.0, lr_step_epochs=30, lr_gamma=0.5)
    once = TrainingSettings(epochs=90, steps_per_epoch=1, learning_rate=1.0, lr_step_epochs=30, lr_gamma=0.5, lr_max_steps=1)
    assert [every.learning_rate_at(e) for e in (0, 29, 30, 60, 89)] == [1.0, 1.0, 0.5, 0.25, 0.25]
    assert [once.learning_rate_at(e) for e in (0, 29, 30, 60, 89)] == [1.0, 1.0, 0.5, 0.5, 0.5]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _distributed_rank(rank, world_size, port, run_dir, out_dir):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        model, result = _train(run_dir, 2, steps=3)
        np.save(out_dir / f"rank{rank}.npy", np.concatenate([model.weight.detach().numpy().ravel(), model.bias.detach().numpy()]))
        np.save(out_dir / f"loss{rank}.npy", np.array([row["loss"] for row in result.history]))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_train_like_one_process_on_the_same_global_batches(tmp_path):
    import torch.multiprocessing as mp

    single, single_result = _train(tmp_path / "single", 2, steps=3)
    mp.spawn(_distributed_rank, args=(2, _free_port(), tmp_path / "ddp", tmp_path), nprocs=2, join=True)
    ranks = [np.load(tmp_path / f"rank{rank}.npy") for rank in range(2)]
    np.testing.assert_array_equal(ranks[0], ranks[1])  # DDP keeps the replicas equal
    # each rank takes half of every global batch, and the gradients are averaged: the single-process steps
    expected_weights = np.concatenate([single.weight.detach().numpy().ravel(), single.bias.detach().numpy()])
    np.testing.assert_allclose(ranks[0], expected_weights, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.load(tmp_path / "loss1.npy"), [row["loss"] for row in single_result.history], rtol=1e-6)
    written = load_weights(tmp_path / "ddp" / "weights.safetensors")[0]
    np.testing.assert_allclose(written["weight"].numpy().ravel(), ranks[0][:1], rtol=0, atol=0)
    assert (tmp_path / "ddp" / "train_log.csv").read_text().count("\n") == 3
