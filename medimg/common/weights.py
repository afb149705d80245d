"""Model weights: safetensors only (never pickle), and the registry of weights shipped with medimg.

A weights file records its architecture name in the safetensors metadata (key ``arch``), so that
loading weights into the wrong network is a clear :class:`ModelError`, not a shape traceback; the
rest of its header (config, preprocessing, output) is :mod:`medimg.common.models`' business.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medimg.common.errors import FormatError, InputError, ModelError, expected
from medimg.common.outputs import atomic_path

if TYPE_CHECKING:
    import torch

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "weights"


@dataclass(frozen=True)
class ShippedWeights:
    """A weights file inside the package, pinned by its SHA-256."""

    name: str
    filename: str
    sha256: str
    arch: str
    card: str  # model card next to the weights: data, training command, metrics


# name -> entry. Update the digest with `sha256sum medimg/weights/<file>` whenever weights are retrained.
SHIPPED: dict[str, ShippedWeights] = {
    "oct-light": ShippedWeights(
        name="oct-light",
        filename="oct_light.safetensors",
        sha256="0e42828ec6b0b62c436646316f08e5ced4e2fa8bde0c30718822efac46a2c606",
        arch="oct-light",
        card="oct_light.md",
    ),
    "acne-fusion": ShippedWeights(
        name="acne-fusion",
        filename="acne_fusion.safetensors",
        sha256="d0587a4213bb114a201eb0efd5ed57bb6c8ea2313e459e74fce90b9592319cbd",
        arch="acne-fusion",
        card="acne_fusion.md",
    ),
    "acne-lesion": ShippedWeights(
        name="acne-lesion",
        filename="acne_lesion.safetensors",
        sha256="d28e0064406940985b577c42b15a93b3028c62c56eeffc0b1be17694ca3be649",
        arch="acne-lesion",
        card="acne_lesion.md",
    ),
    "mandible-res-cbam-unet": ShippedWeights(
        name="mandible-res-cbam-unet",
        filename="mandible_res_cbam_unet.safetensors",
        sha256="1ee60460fefcaf109e53bdec82f8fadd7d8212b31192540c1cde917a7e854228",
        arch="mandible-res-cbam-unet",
        card="mandible_res_cbam_unet.md",
    ),
}


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def shipped_weights(name: str, *, registry: dict[str, ShippedWeights] | None = None, directory: Path = SHIPPED_DIR) -> Path:
    """Path of a shipped weights file after checking its SHA-256."""
    registry = SHIPPED if registry is None else registry
    if name not in registry:
        raise ModelError(expected(f"shipped weights among {', '.join(sorted(registry)) or '(none)'}", repr(name)))
    entry = registry[name]
    path = directory / entry.filename
    if not path.exists():
        raise ModelError(expected(f"the shipped weights file {entry.filename}", "a missing file (reinstall medimg)"))
    digest = sha256_of(path)
    if digest != entry.sha256:
        raise ModelError(expected(f"SHA-256 {entry.sha256[:16]}... for {entry.filename}", f"{digest[:16]}... (file altered or corrupt)"))
    return path


def save_weights(path: Path | str, tensors: dict[str, "torch.Tensor"], *, arch: str, metadata: dict[str, str] | None = None) -> Path:
    """Write tensors (a state dict) as safetensors with ``arch`` recorded, atomically."""
    from safetensors.torch import save_file

    header = {"arch": arch, "format": "medimg-weights-1", **{key: str(value) for key, value in (metadata or {}).items()}}
    contiguous = {key: value.detach().contiguous().cpu() for key, value in tensors.items()}
    path = Path(path)
    with atomic_path(path) as temporary:
        save_file(contiguous, str(temporary), metadata=header)
    return path


def load_weights(path: Path | str, *, arch: str | None = None) -> tuple[dict[str, "torch.Tensor"], dict[str, str]]:
    """Read a safetensors file; with ``arch`` given, refuse weights of another architecture.

    Returns
    -------
    tensors : dict of str to Tensor (on the CPU)
    metadata : dict of str to str
    """
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise InputError(expected("an existing weights file", f"'{path}' which does not exist"))
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises SafetensorError or OSError on non-safetensors bytes
        raise FormatError(expected("a safetensors weights file", f"'{path.name}' which is not one ({type(error).__name__})")) from None
    if arch is not None and metadata.get("arch") != arch:
        raise ModelError(expected(f"weights for architecture '{arch}'", f"'{metadata.get('arch', 'unknown')}' in '{path.name}'"))
    return tensors, metadata


def state_mismatch(own: dict[str, "torch.Tensor"], tensors: dict[str, "torch.Tensor"]) -> str | None:
    """How ``tensors`` fail to match the state dict ``own``, in one line; None when they match."""
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    mis_shaped = sorted(key for key in own.keys() & tensors.keys() if own[key].shape != tensors[key].shape)
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if mis_shaped:
        key = mis_shaped[0]
        problems.append(f"{len(mis_shaped)} of another shape (e.g. {key}: {tuple(tensors[key].shape)} vs {tuple(own[key].shape)})")
    return "; ".join(problems) or None


def load_state_into(model: "torch.nn.Module", tensors: dict[str, "torch.Tensor"], *, source: str) -> None:
    """Load a state dict strictly, reporting missing/unexpected/mis-shaped keys in one line."""
    problems = state_mismatch(model.state_dict(), tensors)
    if problems:
        raise ModelError(expected("weights matching the network's layers", f"{problems} in {source}"))
    model.load_state_dict(tensors, strict=True)
