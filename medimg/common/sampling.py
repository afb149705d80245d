"""Epoch-seeded training datasets: every sample drawn with its own generator.

Sample ``index`` of epoch ``epoch`` is drawn with ``np.random.default_rng([seed, epoch, index])``,
so an epoch's samples are a pure function of ``(seed, epoch)``: they do not depend on the number of
DataLoader workers, on which rank of a distributed run draws them, or on having resumed. A group's
dataset subclasses :class:`EpochSeededDataset` and writes only :meth:`~EpochSeededDataset.draw`;
:func:`medimg.common.training.fit` calls :meth:`~EpochSeededDataset.set_epoch` before each epoch.

No torch import here: a map-style dataset is anything with ``__len__`` and ``__getitem__``, which is
all ``torch.utils.data.DataLoader`` and ``DistributedSampler`` ask of one.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from medimg.common.errors import InputError, expected


@runtime_checkable
class EpochSeeded(Protocol):
    """What :func:`medimg.common.training.fit` needs of a dataset."""

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


class EpochSeededDataset:
    """A map-style dataset of ``length`` random samples per epoch.

    Parameters
    ----------
    length : samples per epoch (for :func:`~medimg.common.training.fit`: steps per epoch times
        the global batch size)
    seed : the run's seed

    Subclasses implement ``draw(index, rng)``, returning one sample (ndarrays or tensors, or a
    tuple of them, which the DataLoader stacks into a batch).
    """

    def __init__(self, length: int, *, seed: int) -> None:
        if length < 1:
            raise InputError(expected("at least one sample per epoch", length))
        if seed < 0:  # numpy's SeedSequence takes non-negative integers only
            raise InputError(expected("a seed >= 0", seed))
        self.length = int(length)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples ``__getitem__`` draws (set in the main process before the
        DataLoader starts its workers, which receive a copy of the dataset)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def generator(self, index: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        if not 0 <= index < self.length:
            raise IndexError(expected(f"a sample index in 0..{self.length - 1}", index))
        return self.draw(index, self.generator(index))

    def draw(self, index: int, rng: np.random.Generator) -> Any:
        """One sample, drawn with ``rng`` only (``index`` is there for datasets that cycle through items)."""
        raise NotImplementedError(f"{type(self).__name__} must define draw(index, rng)")
