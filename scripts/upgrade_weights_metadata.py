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

import json
import sys
from pathlib import Path

from medimg.acne.labels import COUNT_RULES, GRADE_RULES

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


#: ``output`` entries whose values are checked before they are written (the answer rules grade reads)
CHECKED_OUTPUT = {"count_from": COUNT_RULES, "grade_from": GRADE_RULES}


def output_value(key: str, text: str):
    """``text`` as JSON where it parses (``false``, ``0.3``), else as a string; known keys checked."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if key in CHECKED_OUTPUT and value not in CHECKED_OUTPUT[key]:
        sys.exit(f"Error: expected {key} in {', '.join(CHECKED_OUTPUT[key])}, got {value!r}")
    return value


def parse_arguments(arguments: list[str]) -> tuple[dict, list[str]]:
    changes, paths = {}, []
    items = iter(arguments)
    for item in items:
        if item == "--set-output":
            pair = next(items, "")
            key, _, text = pair.partition("=")
            if not key or not text:
                sys.exit(f"Error: expected --set-output KEY=VALUE, got {pair!r}")
            changes[key] = output_value(key, text)
        else:
            paths.append(item)
    return changes, paths


if __name__ == "__main__":
    output_changes, names = parse_arguments(sys.argv[1:])
    for name in names:
        print(f"{upgrade(Path(name), output_changes)}  {name}")
