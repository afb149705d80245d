"""A small seeded, resumable, rank-aware training loop that every pipeline reuses.

Each epoch runs ``steps_per_epoch`` optimiser steps on batches of an epoch-seeded dataset
(:mod:`medimg.common.sampling`) fed by a DataLoader, then writes (atomically) a checkpoint with
everything needed to resume — model, optimiser moments, torch RNG state, history — and the
current weights. Samples are a pure function of ``(seed, epoch, index)`` and the learning rate a
pure function of the epoch, so resuming needs neither sampler nor scheduler state. Nothing is
pickled: tensors go to safetensors, the rest to JSON in its metadata.

In a process group (``torch.distributed`` initialised, e.g. under ``torchrun``) each of the
``world_size`` ranks takes ``batch_size // world_size`` samples per step from a
``DistributedSampler``, so that the ranks together see exactly the global batches a single
process would; the model is wrapped in ``DistributedDataParallel``, and only rank 0 logs,
validates and writes files.
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
from medimg.common.curves import CURVES_NAME, write_training_curves
from medimg.common.errors import InputError, expected
from medimg.common.sampling import EpochSeeded
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
        if self.seed < 0:  # samples are seeded with numpy's SeedSequence, which takes no negative number
            raise InputError(expected("a seed >= 0", self.seed))

    def samples_per_epoch(self, batch_size: int) -> int:
        """The length of an epoch's dataset: one global batch per step."""
        return self.steps_per_epoch * batch_size

    def learning_rate_at(self, epoch: int) -> float:
        """Step schedule: ``lr * gamma ** (epoch // lr_step_epochs)`` (epochs count from 0), the
        exponent capped at ``lr_max_steps`` when that is positive."""
        if self.lr_step_epochs <= 0:
            return self.learning_rate
        steps = epoch // self.lr_step_epochs
        if self.lr_max_steps > 0:
            steps = min(steps, self.lr_max_steps)
        return self.learning_rate * self.lr_gamma ** steps


@dataclass(frozen=True)
class Ranks:
    """This process's place in the (possibly one-process) training group."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def current_ranks() -> Ranks:
    """Rank and world size of the initialised ``torch.distributed`` group; rank 0 of 1 without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


@dataclass
class TrainingResult:
    weights: Path
    checkpoint: Path
    log: Path
    curves: Path
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from_epoch: int = 0
    is_main: bool = True  # False on ranks other than 0 under torchrun: they print nothing

    @property
    def paths(self) -> list[Path]:
        """What a train command prints: weights, log and curves (nothing on ranks other than 0)."""
        return [self.weights, self.log, self.curves] if self.is_main else []


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


def save_checkpoint(path: Path, *, model, optimizer, epoch: int, history: list, arch: str) -> None:
    """Write what resuming after ``epoch`` (counted from 0) needs: model, optimiser, torch RNG, history."""
    import torch

    optimizer_tensors, optimizer_meta = _flatten_optimizer(optimizer.state_dict())
    tensors = {f"model/{key}": value for key, value in model.state_dict().items()}
    tensors.update(optimizer_tensors)
    tensors["rng/torch"] = torch.get_rng_state()
    meta = {"epoch": epoch, "optimizer": optimizer_meta, "history": history}
    save_weights(path, tensors, arch=arch, metadata={"checkpoint": json.dumps(meta)})


def load_checkpoint(path: Path, *, model, optimizer, arch: str) -> tuple[int, list]:
    """Restore state saved by :func:`save_checkpoint`; returns (last finished epoch, history).

    Checkpoints written before samples were epoch-seeded also hold a NumPy generator state, which
    is no longer needed and is ignored.
    """
    import torch

    from medimg.common.weights import load_state_into

    tensors, metadata = load_weights(path, arch=arch)
    meta = json.loads(metadata["checkpoint"])
    model_state = {key[len("model/"):]: value for key, value in tensors.items() if key.startswith("model/")}
    load_state_into(model, model_state, source=str(path))
    optimizer_tensors = {key: value for key, value in tensors.items() if key.startswith("optimizer/")}
    optimizer.load_state_dict(_unflatten_optimizer(optimizer_tensors, meta["optimizer"]))
    torch.set_rng_state(tensors["rng/torch"])
    return int(meta["epoch"]), list(meta["history"])


def _check_dataset(dataset: EpochSeeded, *, settings: TrainingSettings, batch_size: int, ranks: Ranks) -> None:
    if not isinstance(dataset, EpochSeeded):
        raise InputError(expected("an epoch-seeded dataset (set_epoch, __len__, __getitem__)", type(dataset).__name__))
    if batch_size < 1 or batch_size % ranks.world_size:
        raise InputError(expected(f"a batch size >= 1 divisible by the world size {ranks.world_size}", batch_size))
    samples = settings.samples_per_epoch(batch_size)
    if len(dataset) != samples:
        raise InputError(expected(f"a dataset of steps per epoch x batch size = {samples} samples", len(dataset)))
    seed = getattr(dataset, "seed", settings.seed)
    if seed != settings.seed:  # the samples would not follow the run's seed, silently
        raise InputError(expected(f"a dataset seeded with the run's seed {settings.seed}", seed))


def _data_loader(dataset: EpochSeeded, *, batch_size: int, num_workers: int, seed: int, ranks: Ranks, device: "torch.device"):
    """Batches of ``batch_size // world_size`` in index order; rank r of W takes indices r, r + W, ..."""
    import torch
    from torch.utils.data import DataLoader, DistributedSampler

    if num_workers < 0:
        raise InputError(expected("a number of DataLoader workers >= 0", num_workers))
    sampler = None
    if ranks.distributed:
        sampler = DistributedSampler(dataset, num_replicas=ranks.world_size, rank=ranks.rank, shuffle=False, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size // ranks.world_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        # Workers are restarted each epoch (not persistent) so that they receive the dataset
        # after set_epoch; the generator only seeds the workers' torch RNG, which samples do not
        # use, and keeps the DataLoader from drawing on the global RNG the model's dropout uses.
        generator=torch.Generator().manual_seed(seed),
    )


def _distributed(model: "torch.nn.Module", device: "torch.device", ranks: Ranks) -> "torch.nn.Module":
    """``model`` itself in one process, else wrapped in DistributedDataParallel."""
    if not ranks.distributed:
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        # One batch statistic across the ranks, as one process sees it. SyncBatchNorm runs on GPUs
        # only: on CPU (gloo) each rank normalises by its own share of the batch, as plain DDP does.
        # It takes over the BatchNorm parameters themselves, so the optimiser and state dict stay valid.
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" and device.index is not None else None)


def _mean_over_ranks(value: float, ranks: Ranks, device: "torch.device") -> float:
    if not ranks.distributed:
        return value
    import torch
    import torch.distributed as dist

    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total.item()) / ranks.world_size


def barrier(ranks: Ranks) -> None:
    """Wait for every rank (nothing to wait for in one process)."""
    if ranks.distributed:
        import torch.distributed as dist

        dist.barrier()


def fit(
    model: "torch.nn.Module",
    *,
    dataset: EpochSeeded,
    batch_size: int,
    loss_fn: Callable[["torch.nn.Module", Any], "torch.Tensor"],
    settings: TrainingSettings,
    run_dir: Path,
    arch: str,
    device: "torch.device",
    num_workers: int = 0,
    validate: Callable[["torch.nn.Module"], dict[str, float]] | None = None,
    before_epoch: Callable[[int, "torch.nn.Module", "torch.optim.Optimizer"], None] | None = None,
    resume: bool = True,
    start_weights: Path | None = None,
    metadata: dict[str, str] | None = None,
) -> TrainingResult:
    """Train ``model`` with Adam; resumable from ``run_dir`` (see module docstring).

    Parameters
    ----------
    model : the bare network (never a DDP wrapper); its state dict is what the files hold
    dataset : map-style, epoch-seeded (:class:`medimg.common.sampling.EpochSeededDataset`), of
        ``settings.steps_per_epoch * batch_size`` samples, seeded with ``settings.seed``;
        ``fit`` calls ``dataset.set_epoch(epoch)`` before each epoch
    batch_size : the global batch (all ranks together); divisible by the world size
    loss_fn : ``loss_fn(net, batch) -> scalar tensor``; ``batch`` is the DataLoader's collation
        of ``batch_size // world_size`` samples, already on ``device``; ``net`` is ``model`` or
        its DDP wrapper, so call it rather than reaching into ``model``
    num_workers : DataLoader worker processes (0: samples are drawn in this process)
    validate : ``validate(model) -> metrics`` logged after each epoch (rank 0 only, eval mode,
        inference mode)
    before_epoch : ``before_epoch(epoch, model, optimizer)`` may freeze or unfreeze layers (frozen
        parameters simply get no gradient; under DDP the wrapper is then rebuilt)
    start_weights : safetensors weights of ``arch`` the model starts from (fine-tuning), used
        only when no checkpoint is resumed: a resumed run continues from its own state
    metadata : string entries for the weights file, merged after the settings; pass the model
        header of :func:`medimg.common.models.weights_metadata` here with the run's own entries

    Returns
    -------
    TrainingResult
        On ranks other than 0 the paths are where rank 0 wrote, and the history lacks validation.
    """
    import torch

    ranks = current_ranks()
    _check_dataset(dataset, settings=settings, batch_size=batch_size, ranks=ranks)
    loader = _data_loader(dataset, batch_size=batch_size, num_workers=num_workers, seed=settings.seed, ranks=ranks, device=device)
    say = console.info if ranks.is_main else (lambda message: None)
    say(f"world size {ranks.world_size}: {settings.steps_per_epoch} steps per epoch of {batch_size} samples "
        f"({batch_size // ranks.world_size} per rank) on {device}")

    run_dir = Path(run_dir)
    if ranks.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    weights_path = run_dir / WEIGHTS_NAME
    log_path = run_dir / LOG_NAME
    curves_path = run_dir / CURVES_NAME

    torch.manual_seed(settings.seed)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume and checkpoint_path.exists():
        finished, history = load_checkpoint(checkpoint_path, model=model, optimizer=optimizer, arch=arch)
        start_epoch = finished + 1
        say(f"Resuming from {checkpoint_path} after epoch {finished + 1}")
    elif start_weights is not None:
        from medimg.common.weights import load_state_into

        tensors, _ = load_weights(start_weights, arch=arch)
        load_state_into(model, tensors, source=f"'{Path(start_weights).name}'")
        say(f"Starting from the weights in {start_weights}")
    run_settings = {key: str(value) for key, value in asdict(settings).items()}
    if start_weights is not None:
        run_settings["start_weights"] = Path(start_weights).name

    net, wrapped_trainable = model, None
    for epoch in range(start_epoch, settings.epochs):
        learning_rate = settings.learning_rate_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
        if before_epoch is not None:
            before_epoch(epoch, model, optimizer)
        trainable = tuple(parameter.requires_grad for parameter in model.parameters())
        if trainable != wrapped_trainable:
            # DDP registers the parameters that need a gradient when it is built: a layer frozen or
            # unfrozen by before_epoch needs a new wrapper
            net, wrapped_trainable = None, trainable
            net = _distributed(model, device, ranks)
        dataset.set_epoch(epoch)
        if isinstance(loader.sampler, torch.utils.data.DistributedSampler):
            loader.sampler.set_epoch(epoch)
        net.train()
        started = time.perf_counter()
        losses = []
        batches = console.track(loader, description=f"epoch {epoch + 1}/{settings.epochs}") if ranks.is_main else loader
        for batch in batches:
            batch = _to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net, batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch + 1}; lower the learning rate")
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        row: dict[str, float] = {
            "epoch": epoch + 1,
            "lr": learning_rate,
            "loss": _mean_over_ranks(float(np.mean(losses)), ranks, device),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if ranks.is_main and validate is not None:
            model.eval()
            with torch.inference_mode():
                row.update({key: float(value) for key, value in validate(model).items()})
        history.append(row)
        if ranks.is_main:
            say("  ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in row.items()))
            save_weights(weights_path, model.state_dict(), arch=arch,
                         metadata={**run_settings, **(metadata or {}), "epochs_trained": str(epoch + 1)})
            save_checkpoint(checkpoint_path, model=model, optimizer=optimizer, epoch=epoch, history=history, arch=arch)
            write_csv(log_path, history)
            write_training_curves(curves_path, history)
        barrier(ranks)  # the other ranks wait for rank 0's validation and files before the next epoch

    return TrainingResult(weights=weights_path, checkpoint=checkpoint_path, log=log_path, curves=curves_path, history=history,
                          resumed_from_epoch=start_epoch,
                          is_main=ranks.is_main)
