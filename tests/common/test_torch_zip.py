"""Tests for medimg.common.torch_zip: .pth state dicts read without unpickling.

``torch.save`` and ``pickle`` only create fixtures here (our own data); the code under test never
unpickles anything.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from medimg.common.errors import FormatError, InputError
from medimg.common.torch_zip import is_torch_zip, read_state_dict


def _assert_same(read, original):
    assert list(read) == list(original)
    for key, value in original.items():
        assert read[key].dtype == value.dtype, key
        assert read[key].shape == value.shape, key
        assert torch.equal(read[key], value), key


def _write_zip(path, data_pkl, records, *, byteorder=b"little"):
    """A torch.save-style zip around our own ``data.pkl`` bytes and storage records."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        if byteorder is not None:
            archive.writestr("archive/byteorder", byteorder)
        for key, raw in records.items():
            archive.writestr(f"archive/data/{key}", raw)
        archive.writestr("archive/version", b"3\n")
    return path


class _StorageRef:
    def __init__(self, key, numel, storage_type=torch.FloatStorage):
        self.pid = ("storage", storage_type, key, "cpu", numel)


class _TensorRecipe:
    """Pickles as torch does: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride, False, OrderedDict())

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


def _pickle(obj):
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=2, fix_imports=False)
    pickler.persistent_id = lambda value: value.pid if isinstance(value, _StorageRef) else None
    pickler.dump(obj)
    return buffer.getvalue()


def test_dtypes_round_trip(tmp_path):
    original = {
        "float32": torch.tensor([1.5, -2.25, 3.0e-8]),
        "float64": torch.tensor([np.pi, -1.0e300], dtype=torch.float64),
        "float16": torch.tensor([0.5, -65504.0], dtype=torch.float16),
        "bfloat16": torch.tensor([1.0, -3.140625, 1.0e38], dtype=torch.bfloat16),
        "complex64": torch.tensor([1 + 2j, -3j], dtype=torch.complex64),
        "int64": torch.tensor([2**40, -7]),
        "int32": torch.tensor([-(2**31), 2**31 - 1], dtype=torch.int32),
        "int16": torch.tensor([-300, 300], dtype=torch.int16),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "uint16": torch.tensor([0, 65535], dtype=torch.uint16),  # written with _rebuild_tensor_v3
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(42),
        "empty": torch.zeros(0, 3),
    }
    path = tmp_path / "dtypes.pth"
    torch.save(original, path)
    read = read_state_dict(path)
    _assert_same(read, original)
    assert read["bfloat16"][:2].tolist() == [1.0, -3.140625]
    assert read["complex64"].tolist() == [1 + 2j, -3j]
    assert read["scalar"].shape == () and read["scalar"].item() == 42
    assert read["empty"].shape == (0, 3)


def test_strided_and_shared_views(tmp_path):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    original = {
        "transposed": base.t(),  # size (6, 4), stride (1, 6)
        "every_other": base[1:, ::2],  # offset 6, stride (6, 2)
        "row": base[2],  # offset 12, same storage again
        "broadcast": torch.tensor([1.0, 2.0]).expand(3, 2),  # stride (0, 1)
    }
    path = tmp_path / "views.pth"
    torch.save(original, path)
    with zipfile.ZipFile(path) as archive:
        records = [name for name in archive.namelist() if "/data/" in name]
    assert len(records) == 2  # base's storage written once for three tensors
    read = read_state_dict(path)
    _assert_same(read, original)
    assert read["every_other"].tolist() == [[6, 8, 10], [12, 14, 16], [18, 20, 22]]
    assert read["row"].tolist() == [12, 13, 14, 15, 16, 17]
    assert all(tensor.is_contiguous() for tensor in read.values())
    read["row"][0] = -1.0  # copies: no tensor aliases another
    assert read["transposed"][0, 2] == 12.0


def test_module_state_dict_with_metadata(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2).to(torch.float64))
    with torch.no_grad():
        model[1].running_mean.add_(0.5)
        model[1].num_batches_tracked.add_(3)
    state = model.state_dict()
    assert hasattr(state, "_metadata")  # saved through the BUILD opcode, which the reader skips
    path = tmp_path / "model.pt"
    torch.save(state, path)
    read = read_state_dict(path)
    _assert_same(read, state)
    assert list(read) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                          "1.num_batches_tracked", "2.weight", "2.bias"]


def test_parameters_become_plain_tensors(tmp_path):
    weight = nn.Parameter(torch.tensor([[1.0, 2.0]]))
    path = tmp_path / "params.pth"
    torch.save({"w": weight}, path)  # pickled through _rebuild_parameter
    read = read_state_dict(path)
    assert read["w"].tolist() == [[1.0, 2.0]] and not read["w"].requires_grad


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict"])
def test_checkpoint_wrappers_are_unwrapped(tmp_path, wrapper):
    state = {"a": torch.ones(2), "b": torch.arange(3)}
    checkpoint = {"epoch": 90, "arch": "resnet50", "best_acc1": 76.13, "history": [1.0, None, (2, True)], wrapper: state}
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(checkpoint, path)
    _assert_same(read_state_dict(path), state)


def test_dict_without_state_dict_is_refused(tmp_path):
    path = tmp_path / "stats.pth"
    torch.save({"epoch": 3, "loss": 0.5}, path)
    with pytest.raises(FormatError) as info:
        read_state_dict(path)
    assert str(info.value) == (
        "expected a dict of tensors (or a checkpoint holding one under 'state_dict', 'model', 'model_state_dict'), "
        "got a dict with keys 'epoch', 'loss' in 'stats.pth'"
    )


def test_big_endian_records(tmp_path):
    values = np.array([1.5, -2.0, 7.25], dtype=">f4")
    data = _pickle({"w": _TensorRecipe(_StorageRef("0", 3), 0, (3,), (1,))})
    path = _write_zip(tmp_path / "be.pth", data, {"0": values.tobytes()}, byteorder=b"big")
    assert read_state_dict(path)["w"].tolist() == [1.5, -2.0, 7.25]


def test_hand_built_pickle_matches_torch_layout(tmp_path):
    raw = np.arange(6, dtype="<f4").tobytes()
    data = _pickle({"w": _TensorRecipe(_StorageRef("0", 6), 1, (2, 2), (3, 1))})
    path = _write_zip(tmp_path / "hand.pth", data, {"0": raw})
    assert read_state_dict(path)["w"].tolist() == [[1.0, 2.0], [4.0, 5.0]]


@pytest.mark.parametrize(
    ("offset", "size", "stride", "numel", "record_bytes", "got"),
    [
        (0, (100,), (1,), 6, 24, "a tensor of size (100,) reaching element 99 of a 6-element storage"),
        (5, (2,), (1,), 6, 24, "a tensor of size (2,) reaching element 6 of a 6-element storage"),
        (0, (2, 2), (-1, 1), 6, 24, "a tensor layout offset=0, size=(2, 2), stride=(-1, 1)"),
        (0, (2,), (1,), 6, 8, "storage '0' of 24 bytes in a 8-byte record"),
        (0, (2**20, 2**10), (0, 0), 6, 24, "a tensor of size (1048576, 1024) repeating a 6-element storage"),
    ],
)
def test_layouts_outside_the_storage_are_refused(tmp_path, offset, size, stride, numel, record_bytes, got):
    data = _pickle({"w": _TensorRecipe(_StorageRef("0", numel), offset, size, stride)})
    path = _write_zip(tmp_path / "bad.pth", data, {"0": bytes(record_bytes)})
    with pytest.raises(FormatError) as info:
        read_state_dict(path)
    assert str(info.value) == f"expected a plain tensor state dict in 'bad.pth', got {got}; refused, nothing was executed"


def _binunicode(text):
    encoded = text.encode()
    return b"X" + struct.pack("<I", len(encoded)) + encoded


class _Eval:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return eval, (self.code,)


def _malicious_pickles(marker):
    command = f"touch {marker}"
    os_system = b"\x80\x02cos\nsystem\n" + _binunicode(command) + b"\x85R."
    # the call hidden inside an otherwise ordinary state dict, after a real tensor
    nested = _pickle({"w": _TensorRecipe(_StorageRef("0", 1), 0, (1,), (1,)), "x": _Eval(f"open({str(marker)!r}, 'w')")})
    via_stack_global = pickle.dumps(_Eval(f"__import__('os').system({command!r})"), protocol=4)
    return {
        "os.system": os_system,
        "builtins.eval (nested)": nested,
        "builtins.eval (STACK_GLOBAL)": via_stack_global,
    }


@pytest.mark.parametrize("case", ["os.system", "builtins.eval (nested)", "builtins.eval (STACK_GLOBAL)"])
def test_malicious_pickle_is_refused_without_running(tmp_path, case):
    marker = tmp_path / "pwned"
    data = _malicious_pickles(marker)[case]
    path = _write_zip(tmp_path / "evil.pth", data, {"0": bytes(4)})
    assert is_torch_zip(path)
    with pytest.raises(FormatError) as info:
        read_state_dict(path)
    name = case.split(" ")[0]
    assert str(info.value) == (
        f"expected a plain tensor state dict in 'evil.pth', got a pickle that references {name}; refused, nothing was executed"
    )
    assert not marker.exists()


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(nn.Linear(2, 1), path)  # a whole module, not its state_dict()
    with pytest.raises(FormatError) as info:
        read_state_dict(path)
    assert "got a pickle that references torch.nn.modules.linear.Linear; refused" in str(info.value)


def test_unknown_opcode_is_refused(tmp_path):
    data = b"\x80\x02]q\x00K\x01a\x8f."  # EMPTY_LIST, BININT1, APPEND, then EMPTY_SET (not in a state dict)
    path = _write_zip(tmp_path / "set.pth", data, {})
    with pytest.raises(FormatError) as info:
        read_state_dict(path)
    assert str(info.value) == "expected a plain tensor state dict in 'set.pth', got a pickle with opcode EMPTY_SET; refused, nothing was executed"


def test_truncated_pickle_is_a_format_error(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"a": torch.ones(2)}, path)
    with zipfile.ZipFile(path) as archive:
        root = archive.namelist()[0].split("/")[0]
        data = archive.read(f"{root}/data.pkl")
    _write_zip(path, data[: len(data) // 2], {"0": bytes(8)})
    with pytest.raises(FormatError) as info:
        read_state_dict(path)
    assert str(info.value).startswith("expected a well-formed state-dict pickle in 'cut.pth', got ")


def test_legacy_and_foreign_files_are_refused(tmp_path):
    legacy = tmp_path / "old.pth"
    torch.save({"a": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(FormatError) as info:
        read_state_dict(legacy)
    assert str(info.value) == (
        "expected a zip-format PyTorch file (torch >= 1.6), got 'old.pth' which is not a zip (a legacy torch file or something else)"
    )
    npz = tmp_path / "arrays.pth"
    with npz.open("wb") as handle:
        np.savez(handle, a=np.ones(2))
    with pytest.raises(FormatError) as info:
        read_state_dict(npz)
    assert str(info.value) == "expected a zip-format PyTorch file (torch >= 1.6), got 'arrays.pth', a zip without one <root>/data.pkl"
    assert not is_torch_zip(legacy) and not is_torch_zip(npz) and not is_torch_zip(tmp_path / "absent.pth")


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as info:
        read_state_dict(tmp_path / "absent.pth")
    assert "which does not exist" in str(info.value)


def test_a_tiny_file_cannot_claim_gigabytes_through_zero_strides(tmp_path):
    # One float repeated 2**26 times: a few hundred bytes on disk, 256 MiB once copied out.
    path = tmp_path / "expanded.pth"
    torch.save({"huge": torch.zeros(1).expand(2**26)}, path)
    assert path.stat().st_size < 4096
    with pytest.raises(FormatError, match=r"4x the file's size"):
        read_state_dict(path)


def test_compressed_records_are_refused_before_they_are_inflated(tmp_path):
    stored = tmp_path / "stored.pth"
    torch.save({"w": torch.zeros(1000)}, stored)
    deflated = tmp_path / "deflated.pth"
    with zipfile.ZipFile(stored) as source, zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    with pytest.raises(FormatError, match=r"uncompressed records \(as torch.save writes\).*compressed record"):
        read_state_dict(deflated)


def test_an_empty_state_dict_is_refused(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({}, path)
    with pytest.raises(FormatError, match=r"got an empty dict in 'empty.pth'"):
        read_state_dict(path)
