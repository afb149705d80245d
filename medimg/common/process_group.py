"""Training under ``torchrun``: join the process group its environment describes, for one call.

``torchrun --nproc-per-node N medimg <group> train ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set (on several
nodes: ``--nnodes M --node-rank R --rdzv-endpoint HOST:PORT``). A train function wrapped by
:func:`distributable` then joins that group (NCCL on CUDA, each rank on ``cuda:LOCAL_RANK``;
gloo on CPU) before it starts and leaves it when it returns; :func:`medimg.common.training.fit`
sees the group and shards, wraps the model in DistributedDataParallel and lets rank 0 alone log
and write. Started plainly (no ``WORLD_SIZE`` above 1) nothing changes.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

from medimg.common import console
from medimg.common.errors import DeviceError, expected

F = TypeVar("F", bound=Callable)

# Rank 0 may denoise or read a whole data set while the others wait at a barrier.
GROUP_TIMEOUT = timedelta(hours=6)


def launched_world_size() -> int:
    """The world size ``torchrun`` set for this process (1 when not launched by it)."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(text)
    except ValueError:
        raise DeviceError(expected("WORLD_SIZE as an integer (set by torchrun)", repr(text))) from None


def rank_device(device_name: str) -> str:
    """The device this rank trains on: ``cuda:LOCAL_RANK`` when ``device_name`` means CUDA (one GPU
    per process, as torchrun's ``--nproc-per-node`` counts them), else ``device_name``."""
    import torch

    text = device_name.strip().lower()
    wants_cuda = text.startswith("cuda") or (text == "auto" and torch.cuda.is_available())
    if not wants_cuda:
        return text
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if text.startswith("cuda:") and text != f"cuda:{local_rank}":
        console.warn(f"--device {text} ignored under torchrun: rank {os.environ.get('RANK', '?')} uses cuda:{local_rank} (its LOCAL_RANK)")
    return f"cuda:{local_rank}"


@contextmanager
def joined_process_group(device_name: str) -> Iterator[str]:
    """Join torchrun's group for the duration (a no-op outside torchrun); yields the device name
    this rank should use. Ranks other than 0 are quiet on stderr."""
    import torch.distributed as dist

    if launched_world_size() <= 1 or dist.is_initialized():
        yield device_name
        return
    device = rank_device(device_name)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend=backend, timeout=GROUP_TIMEOUT)
    was_quiet = console.is_quiet()
    if dist.get_rank() != 0:
        console.configure(quiet=True)
    try:
        yield device
    finally:
        console.configure(quiet=was_quiet)
        dist.destroy_process_group()


def distributable(train: F) -> F:
    """Run a train function (its ``device`` keyword names the device) inside
    :func:`joined_process_group`, so that ``torchrun`` can launch the command that calls it."""

    @functools.wraps(train)
    def wrapper(*args, **kwargs):
        with joined_process_group(kwargs.get("device", "auto")) as device:
            if "device" in kwargs or device != "auto":
                kwargs["device"] = device
            return train(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@contextmanager
def main_rank_first() -> Iterator[None]:
    """Let rank 0 run the block first (it fills a cache); the other ranks run it after, reading it."""
    from medimg.common.training import barrier, current_ranks

    ranks = current_ranks()
    if not ranks.is_main:
        barrier(ranks)
    yield
    if ranks.is_main:
        barrier(ranks)
