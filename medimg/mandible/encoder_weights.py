"""Transfer learning (paper section 2.3): pretrained ResNet-50 encoder weights and freezing.

Pretrained weights cannot be downloaded here, so the user points at a local file: safetensors,
or a zip-format PyTorch state dict (``torch.save`` since torch 1.6, e.g. torchvision's
``resnet50-*.pth``, any suffix). A ``.pth`` holds a pickle, which can run code when loaded, so it
is never unpickled: :mod:`medimg.common.torch_zip` reads its tensors by walking the pickle's
opcodes and refuses anything but a plain tensor state dict. Other pickle files (legacy non-zip
``.pth``, ``.pkl``, ...) are refused with the one-line conversion for the user to run on their
own trusted file.

Accepted key layouts (detected per file):

* our full network (``encoder.layer1.0.conv1.weight``; ``decoder.*``/``head.*`` are ignored),
* encoder-relative keys (``layer1.0.conv1.weight``),
* torchvision ``resnet50`` state dicts, which are encoder-relative plus ``fc.*`` (ignored),
* any of these behind a DataParallel ``module.`` prefix.

Loading is strict on the encoder: every tensor must be present with the encoder's shape
(``num_batches_tracked`` counters alone may be absent).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from medimg.common.errors import InputError, ModelError, expected
from medimg.common.torch_zip import is_torch_zip, read_state_dict
from medimg.common.weights import load_weights, state_mismatch
from medimg.mandible.models import MandibleUNet, ResNet50Encoder

__all__ = ["PICKLE_SUFFIXES", "conversion_command", "freeze_encoder", "load_encoder_weights"]

PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".pickle", ".ckpt", ".bin", ".tar")
_COUNTER = "num_batches_tracked"


def conversion_command(path: Path | str) -> str:
    """The one-liner that turns a trusted PyTorch state dict into safetensors."""
    source = Path(path)
    target = source.with_suffix(".safetensors")
    return (
        'python -c "import torch; from safetensors.torch import save_file; '
        f"save_file(torch.load({str(source)!r}), {str(target)!r})\""
    )


def _resnet_encoder(model: nn.Module) -> ResNet50Encoder:
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, ResNet50Encoder):
        arch = getattr(model, "arch", type(model).__name__)
        raise ModelError(expected("a res-unet or res-cbam-unet network (only these have a ResNet-50 encoder)", repr(arch)))
    return encoder


def _encoder_tensors(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """Map the file's keys to encoder-relative ones: (tensors, layout name, ignored keys)."""
    if tensors and all(key.startswith("module.") for key in tensors):
        tensors = {key[len("module.") :]: value for key, value in tensors.items()}
    if any(key.startswith("encoder.") for key in tensors):
        kept = {key[len("encoder.") :]: value for key, value in tensors.items() if key.startswith("encoder.")}
        ignored = sorted(key for key in tensors if not key.startswith("encoder."))
        return kept, "medimg full-network key names", ignored
    ignored = sorted(key for key in tensors if key.startswith("fc."))
    kept = {key: value for key, value in tensors.items() if not key.startswith("fc.")}
    layout = "torchvision resnet50 key names" if ignored else "encoder key names"
    return kept, layout, ignored


def load_encoder_weights(model: nn.Module, path: Path | str) -> list[str]:
    """Load pretrained ResNet-50 weights into ``model.encoder`` (res-unet / res-cbam-unet).

    Parameters
    ----------
    model : MandibleUNet built with a ``res-*`` arch; a torchvision resnet50 file fits
        ``width=1.0`` and ``in_channels=3``
    path : a ``.safetensors`` file or a zip-format PyTorch state dict (``torch.save``, any suffix;
        read without unpickling), see the module docstring for accepted key names

    Returns
    -------
    notes : list of str, one line each (what was loaded and what was ignored), for stderr

    Raises :class:`ModelError` for another pickle file (with the conversion command), a
    plain-encoder arch, or keys / shapes that do not match the encoder (one line);
    :class:`FormatError` for a PyTorch file that is not a plain tensor state dict (nothing in it
    is executed) or a broken safetensors file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(expected("an existing weights file", f"'{path}' which does not exist"))
    torch_zip = is_torch_zip(path)
    if not torch_zip and path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelError(
            expected(
                "encoder weights as .safetensors or a zip-format PyTorch state dict (torch >= 1.6); "
                "medimg never unpickles user files",
                f"'{path.name}'; convert your own trusted file with: {conversion_command(path)}",
            )
        )
    encoder = _resnet_encoder(model)
    tensors = read_state_dict(path) if torch_zip else load_weights(path)[0]
    tensors, layout, ignored = _encoder_tensors(tensors)
    own = encoder.state_dict()
    for key, value in own.items():
        if key.endswith(_COUNTER) and key not in tensors:
            tensors[key] = value.clone()
    problems = state_mismatch(own, tensors)
    if problems:
        config = getattr(model, "config", {})
        raise ModelError(
            expected(
                f"ResNet-50 encoder weights for width={config.get('width', '?')}, in_channels={config.get('in_channels', '?')}"
                " (torchvision resnet50 weights need width=1.0, in_channels=3)",
                f"{problems} in '{path.name}'",
            )
        )
    encoder.load_state_dict(tensors, strict=True)
    notes = [f"loaded {len(own)} encoder tensors from '{path.name}' ({layout})"]
    if ignored:
        shown = ", ".join(ignored[:3]) + (", ..." if len(ignored) > 3 else "")
        notes.append(f"ignored {len(ignored)} tensors outside the encoder ({shown})")
    return notes


def freeze_encoder(model: nn.Module, frozen: bool) -> None:
    """Freeze (``True``) or unfreeze (``False``) the encoder, as in the paper's two-phase schedule.

    Frozen encoder parameters get ``requires_grad = False`` and the encoder's BatchNorm layers
    stay in eval mode, also across later ``model.train()`` calls. Why: in train mode BatchNorm
    normalises with the statistics of the current batch (4 CT slices, far from ImageNet's) and
    overwrites its running mean/variance at every step even with frozen weights, so the
    "frozen" pretrained encoder would drift and the decoder would learn on features that change
    under it. Unfreezing restores normal train/eval behaviour.
    """
    if not isinstance(model, MandibleUNet):
        raise ModelError(expected("a network built by medimg.mandible.models.build_model", type(model).__name__))
    if not isinstance(frozen, bool):
        raise ModelError(expected("frozen as True or False", repr(frozen)))
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(not frozen)
    model.encoder_frozen = frozen
    model.train(model.training)
