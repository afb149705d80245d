"""Rewrite a weights file's metadata to the current header (arch, config, preprocessing, output);
the tensors are copied unchanged.

    python scripts/upgrade_weights_metadata.py medimg/weights/oct_light.safetensors [...]

Files written before the model contract carried their network's options as ``model_config`` (or
not at all) and their input settings as loose entries; :func:`medimg.common.models.load_model`
still reads them, and this makes them self-describing. Other entries (training settings, epochs)
are kept. Print the new SHA-256 of each file, for ``medimg.common.weights.SHIPPED``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from medimg.common.models import load_model, weights_metadata
from medimg.common.weights import save_weights, sha256_of

LEGACY_KEYS = ("model_config", "input_size", "window_level", "window_width", "model_arch")


def upgrade(path: Path) -> str:
    from safetensors import safe_open

    model = load_model(path)
    with safe_open(str(path), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    kept = {key: value for key, value in model.metadata.items() if key not in LEGACY_KEYS}
    header = weights_metadata(model.arch, model.network, preprocessing=model.preprocessing, output=model.output)
    save_weights(path, tensors, arch=model.arch, metadata={**kept, **header})
    return sha256_of(path)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(f"{upgrade(Path(name))}  {name}")
