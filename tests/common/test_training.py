import numpy as np
import pytest
import torch

from medimg.common.errors import InputError
from medimg.common.training import TrainingSettings, fit


def _problem():
    """Fit y = 3x - 1 with a single linear unit."""

    def draw_batch(rng):
        x = torch.from_numpy(rng.uniform(-1, 1, size=(16, 1)).astype(np.float32))
        return x, 3 * x - 1

    def loss_fn(model, batch):
        x, y = batch
        return torch.mean((model(x) - y) ** 2)

    return draw_batch, loss_fn


def _train(run_dir, epochs, *, resume=True):
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1)
    draw_batch, loss_fn = _problem()
    settings = TrainingSettings(epochs=epochs, steps_per_epoch=20, learning_rate=0.1, lr_step_epochs=2, lr_gamma=0.5, seed=1)
    result = fit(model, draw_batch=draw_batch, loss_fn=loss_fn, settings=settings, run_dir=run_dir, arch="toy", device=torch.device("cpu"), resume=resume)
    return model, result


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


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="expected epochs >= 1"):
        TrainingSettings(epochs=0, steps_per_epoch=1)


def test_lr_max_steps_caps_the_step_schedule():
    every = TrainingSettings(epochs=90, steps_per_epoch=1, learning_rate=1.0, lr_step_epochs=30, lr_gamma=0.5)
    once = TrainingSettings(epochs=90, steps_per_epoch=1, learning_rate=1.0, lr_step_epochs=30, lr_gamma=0.5, lr_max_steps=1)
    assert [every.learning_rate_at(e) for e in (0, 29, 30, 60, 89)] == [1.0, 1.0, 0.5, 0.25, 0.25]
    assert [once.learning_rate_at(e) for e in (0, 29, 30, 60, 89)] == [1.0, 1.0, 0.5, 0.5, 0.5]
