"""Rewrite a weights file's metadata to the current header (arch, config, preprocessing, output);
the tensors are copied unchanged.

    python scripts/upgrade_weights_metadata.py medimg/weights/oct_light.safetensors [...]
    python scripts/upgrade_weights_metadata.py --set-output count_from=mean medimg/weights/acne_lesion.safetensors

``--set-output KEY=VALUE`` (repeatable) also changes one entry of the ``output`` header (the
answer rule a model card documents), leaving the tensors as they are.

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


def upgrade(path: Path, output_changes: dict | None = None) -> str:
    from safetensors import safe_open

    model = load_model(path)
    with safe_open(str(path), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    kept = {key: value for key, value in model.metadata.items() if key not in LEGACY_KEYS}
    output = {**model.output, **(output_changes or {})}
    header = weights_metadata(model.arch, model.network, preprocessing=model.preprocessing, output=output)
    save_weights(path, tensors, arch=model.arch, metadata={**kept, **header})
    return sha256_of(path)


def parse_arguments(arguments: list[str]) -> tuple[dict, list[str]]:
    changes, paths = {}, []
    items = iter(arguments)
    for item in items:
        if item == "--set-output":
            key, _, value = next(items, "").partition("=")
            if not key or not value:
                sys.exit("Error: expected --set-output KEY=VALUE")
            changes[key] = value
        else:
            paths.append(item)
    return changes, paths


if __name__ == "__main__":
    output_changes, names = parse_arguments(sys.argv[1:])
    for name in names:
        print(f"{upgrade(Path(name), output_changes)}  {name}")
