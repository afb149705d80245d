"""Tests for medimg.mandible.encoder_weights: pretrained-encoder loading and freezing."""

from __future__ import annotations

import struct
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from medimg.common.errors import FormatError, InputError, ModelError
from medimg.mandible.encoder_weights import conversion_command, freeze_encoder, load_encoder_weights
from medimg.mandible.models import build_model

WIDTH = 0.125


def _model(seed: int, arch: str = "res-cbam-unet", width: float = WIDTH):
    torch.manual_seed(seed)
    return build_model(arch, width=width)


def _torchvision_style_file(tmp_path, source):
    """The encoder's state under torchvision resnet50 key names, plus a classifier."""
    tensors = {key: value.clone() for key, value in source.encoder.state_dict().items()}
    trunk_out = source.encoder.channels[-1]
    tensors["fc.weight"] = torch.zeros(1000, trunk_out)
    tensors["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "r50.safetensors"
    save_file(tensors, str(path))
    return path


def _assert_encoders_equal(a, b):
    state_a, state_b = a.encoder.state_dict(), b.encoder.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_torchvision_keys_load_exactly(tmp_path):
    source = _model(0)
    with torch.no_grad():
        source.encoder.bn1.running_mean.add_(0.5)  # buffers travel too
    path = _torchvision_style_file(tmp_path, source)
    target = _model(1)
    decoder_before = {k: v.clone() for k, v in target.decoder.state_dict().items()}
    notes = load_encoder_weights(target, path)
    _assert_encoders_equal(source, target)
    assert notes == [
        "loaded 318 encoder tensors from 'r50.safetensors' (torchvision resnet50 key names)",
        "ignored 2 tensors outside the encoder (fc.bias, fc.weight)",
    ]
    for key, value in target.decoder.state_dict().items():
        assert torch.equal(value, decoder_before[key])


def test_full_network_keys_load_encoder_only(tmp_path):
    source = _model(0, arch="res-unet")
    path = tmp_path / "full.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    target = _model(1)  # another decoder: only the encoder part is taken
    notes = load_encoder_weights(target, path)
    _assert_encoders_equal(source, target)
    assert notes[0] == "loaded 318 encoder tensors from 'full.safetensors' (medimg full-network key names)"
    # 5 decoder modules x (2 conv weights + 2 BN x 5 tensors) + head weight and bias = 62
    assert notes[1].startswith("ignored 62 tensors outside the encoder (decoder.blocks.0.")


def test_module_prefix_and_missing_batch_counters(tmp_path):
    source = _model(0)
    tensors = {f"module.{k}": v for k, v in source.encoder.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "dp.safetensors"
    save_file(tensors, str(path))
    target = _model(1)
    notes = load_encoder_weights(target, path)
    assert notes == ["loaded 318 encoder tensors from 'dp.safetensors' (encoder key names)"]
    for key, value in source.encoder.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(value, target.encoder.state_dict()[key])


def test_torch_saved_pth_loads_without_unpickling(tmp_path):
    """torchvision ships resnet50-*.pth files made by torch.save(model.state_dict())."""
    source = _model(0)
    with torch.no_grad():
        source.encoder.bn1.running_mean.add_(0.5)
    state = source.encoder.state_dict()  # an OrderedDict with _metadata, as torchvision's
    trunk_out = source.encoder.channels[-1]
    state["fc.weight"] = torch.zeros(1000, trunk_out)
    state["fc.bias"] = torch.zeros(1000)
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(state, path)
    target = _model(1)
    notes = load_encoder_weights(target, path)
    _assert_encoders_equal(source, target)
    assert notes == [
        "loaded 318 encoder tensors from 'resnet50-0676ba61.pth' (torchvision resnet50 key names)",
        "ignored 2 tensors outside the encoder (fc.bias, fc.weight)",
    ]


def test_training_checkpoint_with_dataparallel_prefix(tmp_path):
    source = _model(0, arch="res-unet")
    checkpoint = {
        "epoch": 90,
        "arch": "resnet50",
        "state_dict": {f"module.{key}": value for key, value in source.state_dict().items()},
    }
    path = tmp_path / "checkpoint.pth.tar"  # the ImageNet example's name; the content decides, not the suffix
    torch.save(checkpoint, path)
    target = _model(1)
    notes = load_encoder_weights(target, path)
    _assert_encoders_equal(source, target)
    assert notes[0] == "loaded 318 encoder tensors from 'checkpoint.pth.tar' (medimg full-network key names)"


def test_malicious_pth_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    command = f"touch {marker}".encode()
    data_pkl = b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(command)) + command + b"\x85R."
    path = tmp_path / "r50.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", b"little")
    with pytest.raises(FormatError) as info:
        load_encoder_weights(_model(0), path)
    assert str(info.value) == (
        "expected a plain tensor state dict in 'r50.pth', got a pickle that references os.system; refused, nothing was executed"
    )
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".PKL"])
def test_other_pickle_files_are_refused_with_conversion_command(tmp_path, suffix):
    path = tmp_path / f"r50{suffix}"
    path.write_bytes(b"\x80\x04not read at all")  # a legacy (non-zip) pickle
    with pytest.raises(ModelError) as info:
        load_encoder_weights(_model(0), path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "expected encoder weights as .safetensors or a zip-format PyTorch state dict (torch >= 1.6); "
        f"medimg never unpickles user files, got 'r50{suffix}'; convert your own trusted file with: "
    )
    assert conversion_command(path) in message
    assert f"torch.load('{path}')" in message and f"'{path.with_suffix('.safetensors')}'" in message


def test_missing_weights_file(tmp_path):
    with pytest.raises(InputError) as info:
        load_encoder_weights(_model(0), tmp_path / "absent.pth")
    assert str(info.value) == f"expected an existing weights file, got '{tmp_path / 'absent.pth'}' which does not exist"


def test_conversion_command_text():
    assert conversion_command("r50.pth") == (
        'python -c "import torch; from safetensors.torch import save_file; '
        "save_file(torch.load('r50.pth'), 'r50.safetensors')\""
    )


def test_shape_mismatch_is_one_line(tmp_path):
    path = _torchvision_style_file(tmp_path, _model(0, width=WIDTH))
    with pytest.raises(ModelError) as info:
        load_encoder_weights(_model(1, width=0.25), path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("expected ResNet-50 encoder weights for width=0.25, in_channels=3 (torchvision resnet50 weights need width=1.0, in_channels=3), got ")
    assert "265 of another shape (e.g. bn1.bias: (8,) vs (16,))" in message
    assert message.endswith("in 'r50.safetensors'")


def test_missing_and_unexpected_keys(tmp_path):
    tensors = dict(_model(0).encoder.state_dict())
    del tensors["layer4.2.bn3.bias"]
    tensors["layer5.0.conv1.weight"] = torch.zeros(1)
    path = tmp_path / "odd.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(ModelError) as info:
        load_encoder_weights(_model(1), path)
    message = str(info.value)
    assert "1 missing (e.g. layer4.2.bn3.bias); 1 unexpected (e.g. layer5.0.conv1.weight)" in message


@pytest.mark.parametrize("arch", ["unet", "cbam-unet"])
def test_plain_encoders_have_no_resnet_weights(tmp_path, arch):
    path = _torchvision_style_file(tmp_path, _model(0))
    with pytest.raises(ModelError) as info:
        load_encoder_weights(_model(1, arch=arch), path)
    assert str(info.value) == f"expected a res-unet or res-cbam-unet network (only these have a ResNet-50 encoder), got '{arch}'"


def test_not_a_safetensors_file(tmp_path):
    path = tmp_path / "fake.safetensors"
    path.write_bytes(b"not safetensors")
    with pytest.raises(FormatError):
        load_encoder_weights(_model(0), path)


def _batchnorms(module):
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def test_freeze_keeps_encoder_fixed_while_training():
    model = _model(0)
    freeze_encoder(model, True)
    model.train()  # a training loop calls this every epoch
    assert all(not p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.decoder.parameters())
    assert all(not bn.training for bn in _batchnorms(model.encoder))
    assert all(bn.training for bn in _batchnorms(model.decoder))
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    model(torch.randn(2, 3, 32, 32)).mean().backward()
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, before[key]), key  # running statistics untouched too
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.head.weight.grad is not None

    freeze_encoder(model, False)
    assert model.encoder_frozen is False
    assert all(p.requires_grad for p in model.encoder.parameters())
    assert all(bn.training for bn in _batchnorms(model.encoder))


def test_unfreeze_keeps_eval_mode():
    model = _model(0).eval()
    freeze_encoder(model, True)
    freeze_encoder(model, False)
    assert not any(m.training for m in model.modules())


def test_freeze_rejects_non_bool():
    with pytest.raises(ModelError):
        freeze_encoder(_model(0), 1)
