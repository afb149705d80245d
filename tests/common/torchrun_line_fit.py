"""Launched by ``torchrun`` in test_process_group: the line model of test_training, trained by a
function wrapped in :func:`medimg.common.process_group.distributable`, as the train commands are.

Usage: torchrun --nproc-per-node N torchrun_line_fit.py RUN_DIR WEIGHTS_NPY
"""

import sys
from pathlib import Path

import numpy as np

from medimg.common.process_group import distributable
from tests.common.test_training import _train


@distributable
def train_line(run_dir: Path, *, device: str = "cpu"):
    return _train(run_dir, 2, steps=3)


if __name__ == "__main__":
    model, result = train_line(Path(sys.argv[1]), device="cpu")
    import torch.distributed as dist

    assert not dist.is_initialized()  # the wrapper left the group
    if result.is_main:
        np.save(sys.argv[2], np.concatenate([model.weight.detach().numpy().ravel(), model.bias.detach().numpy()]))
