import pytest
import torch

from medimg.common.device import resolve_device
from medimg.common.errors import DeviceError


def test_cpu_is_always_available(capsys):
    assert resolve_device("cpu") == torch.device("cpu")
    assert "Using device cpu" in capsys.readouterr().err


def test_auto_picks_cuda_only_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", announce=False).type == "cpu"


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch, spec):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"expected a CUDA GPU for --device cuda.*got none"):
        resolve_device(spec)


def test_cuda_index_beyond_the_count_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(DeviceError, match="index below 1, got 3"):
        resolve_device("cuda:3")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "tpu", ""])
def test_unknown_device_names_are_refused(spec):
    with pytest.raises(DeviceError, match="expected --device auto, cpu, cuda or cuda:N"):
        resolve_device(spec)
