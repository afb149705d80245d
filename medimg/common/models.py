"""One model contract for every pipeline: a registry of networks by architecture name, and weights
files that carry everything needed to rebuild and feed their network.

A group registers its networks from its ``models`` module (``register(NetworkSpec(...))``); the
module is found through the ``medimg.networks`` entry points of the installed package, so the
common layer never imports a group, and torch is imported only when a network is asked for.

A weights file (safetensors, never pickle) carries four JSON metadata entries::

    arch           "oct-light", "acne-fusion", "mandible-res-cbam-unet", ...
    config         the keyword arguments of the architecture's builder
    preprocessing  how inputs were made in training (scaling, CT window, input size, mean/std)
    output         what the logits are: {"activation": "sigmoid"} or one entry per head

so :func:`load_model` rebuilds any weights file alone. Files from before this contract (a
``model_config`` entry, or none) are read through :func:`weights_header` with the defaults of
their architecture.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medimg.common.errors import FormatError, InputError, ModelError, UnknownModelError, expected

if TYPE_CHECKING:
    import torch

ENTRY_POINT_GROUP = "medimg.networks"
METADATA_FORMAT = "medimg-weights-2"


@dataclass(frozen=True)
class NetworkSpec:
    """A registered architecture.

    Attributes
    ----------
    arch : "<group>-<name>", the name weights files record
    build : ``build(**config) -> torch.nn.Module``; raises ModelError on bad options
    config_of : ``config_of(network) -> dict`` of JSON types that rebuilds ``network`` with ``build``
    preprocessing : what inputs look like unless the weights file says otherwise
    output : the logits' meaning, read by :func:`medimg.common.activation.activate`
    shipped : name of its default weights in :data:`medimg.common.weights.SHIPPED`, if any
    """

    arch: str
    build: Callable[..., "torch.nn.Module"]
    config_of: Callable[["torch.nn.Module"], dict]
    preprocessing: dict = field(default_factory=dict)
    output: dict = field(default_factory=lambda: {"activation": "sigmoid"})
    shipped: str | None = None

    @property
    def group(self) -> str:
        return self.arch.split("-", 1)[0]


_REGISTRY: dict[str, NetworkSpec] = {}
_plugins_loaded = False


def register(spec: NetworkSpec) -> NetworkSpec:
    """Add an architecture; registering the same name twice keeps the latest (module reloads)."""
    if "-" not in spec.arch:
        raise ModelError(expected("an arch named '<group>-<name>'", repr(spec.arch)))
    _REGISTRY[spec.arch] = spec
    return spec


def register_group(
    group: str,
    names: Sequence[str],
    build: Callable[..., "torch.nn.Module"],
    *,
    config_of: Callable[["torch.nn.Module"], dict],
    preprocessing: dict,
    output: dict,
    shipped: dict[str, str] | None = None,
) -> None:
    """Register ``<group>-<name>`` for each name, built by ``build(name, **config)``; ``shipped``
    maps a name to its default weights in :data:`medimg.common.weights.SHIPPED`."""
    for name in names:
        register(NetworkSpec(arch=f"{group}-{name}", build=partial(build, name), config_of=config_of,
                             preprocessing=preprocessing, output=output, shipped=(shipped or {}).get(name)))


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()  # importing a group's models module registers its networks
    _plugins_loaded = True


def registered(group: str | None = None) -> list[str]:
    """Architecture names, optionally of one group (``"oct"``, ``"acne"``, ``"mandible"``)."""
    _load_plugins()
    return sorted(name for name, spec in _REGISTRY.items() if group is None or spec.group == group)


def network_spec(arch: str) -> NetworkSpec:
    """The spec of ``arch``; an unknown name lists the valid ones (of its group when it has one)."""
    if arch not in _REGISTRY:
        _load_plugins()
    if arch not in _REGISTRY:
        group = str(arch).split("-", 1)[0]
        names = registered(group) or registered()
        if not names:
            raise ModelError(expected(f"networks registered through the '{ENTRY_POINT_GROUP}' entry points",
                                      "none (medimg's install is stale: run 'pip install -e .' or 'make install')"))
        raise ModelError(expected(f"an architecture among {', '.join(names)}", repr(arch)))
    return _REGISTRY[arch]


def arch_of(group: str, model: str) -> str:
    """The architecture ``<group>-<model>`` a ``--model`` option names; an unknown one lists the
    group's models by their short names."""
    arch = f"{group}-{model}"
    names = registered(group)
    if not names:
        network_spec(arch)  # says the install is stale
    if arch not in names:
        short = [name[len(group) + 1 :] for name in names]
        raise UnknownModelError(expected(f"a model among {', '.join(short)}", repr(model)))
    return arch


def build_network(arch: str, config: dict | None = None) -> "torch.nn.Module":
    """Build a registered network from its config (the builder's defaults for missing keys)."""
    spec = network_spec(arch)
    try:
        return spec.build(**(config or {}))
    except TypeError as error:
        raise ModelError(expected(f"config keywords that '{arch}' accepts", f"{config} ({error})")) from None


# ---- weights metadata -----------------------------------------------------------------------


def weights_metadata(arch: str, network: "torch.nn.Module", *, preprocessing: dict | None = None, output: dict | None = None) -> dict[str, str]:
    """The metadata a weights file of ``network`` needs to rebuild and feed it alone."""
    spec = network_spec(arch)
    header = {
        "arch": arch,
        "format": METADATA_FORMAT,
        "config": spec.config_of(network),
        "preprocessing": {**spec.preprocessing, **(preprocessing or {})},
        "output": output if output is not None else spec.output,
    }
    return {key: value if isinstance(value, str) else json.dumps(value, sort_keys=True) for key, value in header.items()}


def _json_object(metadata: dict[str, str], key: str, source: str) -> dict | None:
    from medimg.common.tables import json_object

    text = metadata.get(key)
    if text is None:
        return None
    value = json_object(text)
    if value is None:
        raise FormatError(expected(f"a JSON object under '{key}' in the weights metadata", f"{text[:60]!r} in '{source}'"))
    return value


def _legacy_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class WeightsHeader:
    arch: str
    config: dict
    preprocessing: dict
    output: dict


def weights_header(metadata: dict[str, str], *, source: str) -> WeightsHeader:
    """The four header entries of a weights file, with its architecture's defaults where a file
    written before this contract lacks them (``model_config`` was the old name of ``config``)."""
    arch = metadata.get("arch")
    if not arch:
        raise ModelError(expected("an 'arch' entry in the weights metadata", f"none in '{source}'"))
    spec = network_spec(arch)
    config = _json_object(metadata, "config", source)
    if config is None:
        config = _json_object(metadata, "model_config", source) or {}
        config.pop("arch", None)
    stored = _json_object(metadata, "preprocessing", source)
    if stored is None:  # older files kept input settings as top-level entries of the same names
        stored = {key: _legacy_value(metadata[key]) for key in spec.preprocessing if key in metadata}
    preprocessing = {**spec.preprocessing, **stored}
    output = _json_object(metadata, "output", source) or spec.output
    return WeightsHeader(arch, config, preprocessing, output)


@dataclass(frozen=True)
class LoadedModel:
    """A network rebuilt from a weights file, in eval mode, with what the file says about it."""

    network: "torch.nn.Module"
    arch: str
    config: dict
    preprocessing: dict
    output: dict
    source: str  # "shipped:<name>" or the weights path
    metadata: dict[str, str]


def load_model(weights: Path | str | None = None, *, arch: str | None = None, group: str | None = None) -> LoadedModel:
    """Rebuild the network stored in a weights file and load its tensors.

    Parameters
    ----------
    weights : a safetensors file; None takes the shipped weights of ``arch``
    arch : the architecture the file must hold (None: whatever it holds, within ``group``)
    group : with ``arch`` None, the group the file's architecture must belong to
    """
    from medimg.common.weights import load_state_into, load_weights, shipped_weights

    if weights is None:
        if arch is None:
            raise ModelError(expected("an architecture or a weights file", "neither"))
        spec = network_spec(arch)
        if spec.shipped is None:
            with_weights = [name for name in registered(spec.group) if _REGISTRY[name].shipped]
            raise ModelError(expected(
                f"--weights for '{arch}' (weights ship for {', '.join(with_weights) or 'none'}; train them with 'medimg {spec.group} train')",
                "none"))
        try:
            weights, source = shipped_weights(spec.shipped), f"shipped:{spec.shipped}"
        except ModelError as error:
            raise ModelError(f"{error}; or pass --weights (train them with 'medimg {spec.group} train')") from None
    else:
        source = str(weights)
        if arch is not None:
            network_spec(arch)  # an unknown name is told as such, not as a mismatching file
    name = Path(weights).name
    try:
        tensors, metadata = load_weights(weights, arch=arch)
        header = weights_header(metadata, source=name)
    except InputError as error:  # a missing or unreadable weights file dooms every input of a batch alike
        raise ModelError(str(error)) from None
    if group is not None and network_spec(header.arch).group != group:
        raise ModelError(expected(f"{group} weights (an arch among {', '.join(registered(group))})", f"'{header.arch}' in '{name}'"))
    network = build_network(header.arch, header.config)
    load_state_into(network, tensors, source=name)
    return LoadedModel(network.eval(), header.arch, header.config, header.preprocessing, header.output, source, metadata)
