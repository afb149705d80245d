"""A small seeded, resumable training loop that every pipeline reuses.

Each epoch runs ``steps_per_epoch`` optimiser steps on batches drawn from a seeded NumPy
generator, then writes (atomically) a checkpoint with everything needed to resume — model,
optimiser moments, RNG states, history — and the current weights. The learning rate is a pure
function of the epoch, so resuming needs no scheduler state. Nothing is pickled: tensors go to
safetensors, the rest to JSON in its metadata.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medimg.common import console
from medimg.common.errors import InputError, expected
from medimg.common.tables import write_csv
from medimg.common.weights import load_weights, save_weights

if TYPE_CHECKING:
    import torch

CHECKPOINT_NAME = "checkpoint.safetensors"
WEIGHTS_NAME = "weights.safetensors"
LOG_NAME = "train_log.csv"


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int
    steps_per_epoch: int
    learning_rate: float = 1e-3
    lr_step_epochs: int = 0  # 0 keeps the rate constant
    lr_gamma: float = 0.1
    lr_max_steps: int = 0  # 0: a step every lr_step_epochs; 1: one step only (a transfer-learning schedule)
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.steps_per_epoch < 1:
            raise InputError(expected("epochs >= 1 and steps per epoch >= 1", f"{self.epochs} and {self.steps_per_epoch}"))
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise InputError(expected("a positive learning rate", self.learning_rate))

    def learning_rate_at(self, epoch: int) -> float:
        """Step schedule: ``lr * gamma ** (epoch // lr_step_epochs)`` (epochs count from 0), the
        exponent capped at ``lr_max_steps`` when that is positive."""
        if self.lr_step_epochs <= 0:
            return self.learning_rate
        steps = epoch // self.lr_step_epochs
        if self.lr_max_steps > 0:
            steps = min(steps, self.lr_max_steps)
        return self.learning_rate * self.lr_gamma ** steps


@dataclass
class TrainingResult:
    weights: Path
    checkpoint: Path
    log: Path
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0


def _to_device(batch: Any, device: "torch.device") -> Any:
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    return batch


def _flatten_optimizer(state: dict) -> tuple[dict[str, "torch.Tensor"], dict]:
    import torch

    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                plain.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain_state": plain}


def _unflatten_optimizer(tensors: dict[str, "torch.Tensor"], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split("/", 2)
        state.setdefault(int(index), {})[key] = value
    for index, slots in meta["plain_state"].items():
        state.setdefault(int(index), {}).update(slots)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: Path, *, model, optimizer, epoch: int, rng: np.random.Generator, history: list, arch: str) -> None:
    import torch

    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer.state_dict())
    tensors = {f"model/{key}": value for key, value in model.state_dict().items()}
    tensors.update(optimizer_tensors)
    tensors["rng/torch"] = torch.get_rng_state()
    meta = {
        "epoch": epoch,
        "optimizer": optimizer_meta,
        "numpy_rng": rng.bit_generator.state,
        "history": history,
    }
    save_weights(path, tensors, arch=arch, metadata={"checkpoint": json.dumps(meta)})


def load_checkpoint(path: Path, *, model, optimizer, rng: np.random.Generator, arch: str) -> tuple[int, list]:
    """Restore state saved by :func:`save_checkpoint`; returns (last finished epoch, history)."""
    import torch

    from medimg.common.weights import load_state_into

    tensors, metadata = load_weights(path, arch=arch)
    meta = json.loads(metadata["checkpoint"])
    model_state = {key[len("model/"):]: value for key, value in tensors.items() if key.startswith("model/")}
    load_state_into(model, model_state, source=str(path))
    optimizer_tensors = {key: value for key, value in tensors.items() if key.startswith("optimizer/")}
    optimizer.load_state_dict(_unflatten_optimizer(optimizer_tensors, meta["optimizer"]))
    torch.set_rng_state(tensors["rng/torch"])
    rng.bit_generator.state = meta["numpy_rng"]
    return int(meta["epoch"]), list(meta["history"])


def fit(
    model: "torch.nn.Module",
    *,
    draw_batch: Callable[[np.random.Generator], Any],
    loss_fn: Callable[["torch.nn.Module", Any], "torch.Tensor"],
    settings: TrainingSettings,
    run_dir: Path,
    arch: str,
    device: "torch.device",
    validate: Callable[["torch.nn.Module"], dict[str, float]] | None = None,
    before_epoch: Callable[[int, "torch.nn.Module", "torch.optim.Optimizer"], None] | None = None,
    resume: bool = True,
    metadata: dict[str, str] | None = None,
) -> TrainingResult:
    """Train ``model`` with Adam; resumable from ``run_dir`` (see module docstring).

    ``draw_batch(rng)`` returns one batch (tensors on the CPU); ``loss_fn(model, batch)`` returns a
    scalar loss on the device; ``validate(model)`` returns metrics logged after each epoch;
    ``before_epoch`` may freeze or unfreeze layers (the loop then rebuilds nothing: frozen
    parameters simply get no gradient).
    """
    import torch

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    weights_path = run_dir / WEIGHTS_NAME
    log_path = run_dir / LOG_NAME

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume and checkpoint_path.exists():
        finished, history = load_checkpoint(checkpoint_path, model=model, optimizer=optimizer, rng=rng, arch=arch)
        start_epoch = finished + 1
        console.info(f"Resuming from {checkpoint_path} after epoch {finished + 1}")
    run_settings = {key: str(value) for key, value in asdict(settings).items()}

    for epoch in range(start_epoch, settings.epochs):
        learning_rate = settings.learning_rate_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        if before_epoch is not None:
            before_epoch(epoch, model, optimizer)
        model.train()
        started = time.perf_counter()
        losses = []
        for _ in console.track(range(settings.steps_per_epoch), description=f"epoch {epoch + 1}/{settings.epochs}"):
            batch = _to_device(draw_batch(rng), device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate")
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        row: dict[str, float] = {
            "epoch": epoch + 1,
            "lr": learning_rate,
            "loss": float(np.mean(losses)),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if validate is not None:
            model.eval()
            with torch.inference_mode():
                row.update({key: float(value) for key, value in validate(model).items()})
        history.append(row)
        console.info("  ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in row.items()))
        save_weights(weights_path, model.state_dict(), arch=arch, metadata={**run_settings, **(metadata or {}), "epochs_trained": str(epoch + 1)})
        save_checkpoint(checkpoint_path, model=model, optimizer=optimizer, epoch=epoch, rng=rng, history=history, arch=arch)
        write_csv(log_path, history)

    return TrainingResult(weights=weights_path, checkpoint=checkpoint_path, log=log_path, history=history, resumed_from_epoch=start_epoch)
