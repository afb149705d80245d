"""Compute-device selection shared by every command that runs a network."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from medimg.common import console
from medimg.common.errors import DeviceError, DeviceNameError, expected

if TYPE_CHECKING:
    import torch

DEVICE_HELP = "Compute device: auto (CUDA when available), cpu, cuda or cuda:N."
_CUDA_PATTERN = re.compile(r"^cuda(?::(\d+))?$")


def check_device_name(spec: str) -> str:
    """Refuse a string that names no device at all (``tpu``), without importing torch; whether
    the named GPU exists is :func:`resolve_device`'s question, asked when the network loads."""
    text = str(spec).strip().lower()
    if text not in ("auto", "cpu") and _CUDA_PATTERN.match(text) is None:
        raise DeviceNameError(expected("--device auto, cpu, cuda or cuda:N", repr(spec)))
    return text


def resolve_device(spec: str = "auto", *, announce: bool = True) -> "torch.device":
    """Turn ``auto|cpu|cuda|cuda:N`` into a :class:`torch.device`.

    Asking for CUDA on a machine without it is a :class:`DeviceError`, never a silent CPU fallback:
    a batch job that expects a GPU should stop rather than run 100x slower.
    """
    import torch

    text = spec.strip().lower()
    if text == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif text == "cpu":
        device = torch.device("cpu")
    else:
        match = _CUDA_PATTERN.match(text)
        if match is None:
            raise DeviceNameError(expected("--device auto, cpu, cuda or cuda:N", repr(spec)))
        if not torch.cuda.is_available():
            raise DeviceError(expected(f"a CUDA GPU for --device {text}", "none (torch.cuda.is_available() is False)"))
        index = int(match.group(1) or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(expected(f"a CUDA device index below {count}", index))
        device = torch.device("cuda", index)
    if announce:
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
        console.info(f"Using device {device} ({name})")
    return device
