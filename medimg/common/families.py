"""Randomness as data: a phantom *family* is a dataclass of ranges; sampling it gives frozen
*parameters*; a pure ``render(params, ...)`` turns parameters into images and truth.

After TorchIO's ``get_params``: the random draw happens in one place (``Family.sample``), the
drawn values are a plain frozen dataclass saved as JSON beside what they produced, and rendering
is deterministic given them. A phantom can then be reproduced from its JSON, inspected, or
re-rendered at another size, and a training set is a list of such parameter files.

Ranges a family is built from::

    Uniform(low, high)        float in [low, high)
    LogUniform(low, high)     float, uniform in log space (scales, contrasts)
    IntRange(low, high)       integer in [low, high] (both ends included)
    Choice(options, weights)  one of ``options``; an option that is itself a range is then
                              drawn from (a mixture: ``Choice((Uniform(6, 12), Uniform(20, 28)))``)

A family is any frozen dataclass whose fields are ranges or constants, with a ``sample(rng)``
method returning its parameter dataclass; :func:`draw` draws one field.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from medimg.common.errors import FormatError, InputError, expected

P = TypeVar("P")


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise InputError(expected("a range with finite low <= high", f"({self.low}, {self.high})"))

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high)) if self.high > self.low else float(self.low)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class LogUniform(Uniform):
    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            raise InputError(expected("a log-uniform range of positive values", f"({self.low}, {self.high})"))

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high)))) if self.high > self.low else float(self.low)


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int  # included

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise InputError(expected("an integer range with low <= high", f"({self.low}, {self.high})"))

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def contains(self, value: int) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Choice:
    options: tuple
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not self.options:
            raise InputError(expected("at least one option", "none"))
        if self.weights is not None and (len(self.weights) != len(self.options) or min(self.weights) < 0 or sum(self.weights) <= 0):
            raise InputError(expected(f"{len(self.options)} non-negative weights", self.weights))

    def sample(self, rng: np.random.Generator) -> Any:
        if self.weights is None:
            option = self.options[int(rng.integers(len(self.options)))]
        else:
            p = np.asarray(self.weights, dtype=np.float64)
            option = self.options[int(rng.choice(len(self.options), p=p / p.sum()))]
        return draw(option, rng)

    def contains(self, value: Any) -> bool:
        return any(option.contains(value) if _is_range(option) else value == option for option in self.options)


Range = Uniform | LogUniform | IntRange | Choice


def _is_range(value: Any) -> bool:
    return hasattr(value, "sample") and not isinstance(value, type)


def draw(value: Any, rng: np.random.Generator) -> Any:
    """One value of a family field: a range is sampled, a constant is returned as it is."""
    return value.sample(rng) if _is_range(value) else value


class Family(Protocol[P]):
    """Ranges that sample frozen parameters (see module docstring)."""

    def sample(self, rng: np.random.Generator) -> P: ...


def sample_fields(family: Any, params_type: type[P], rng: np.random.Generator, **extra: Any) -> P:
    """Draw every field of ``family`` that ``params_type`` also has, in field order, plus ``extra``.

    The common case of ``Family.sample``: one parameter per range of the same name; ``extra``
    holds what the family derives itself (positions, per-object lists).
    """
    names = {f.name for f in dataclasses.fields(params_type)}
    values = {f.name: draw(getattr(family, f.name), rng) for f in dataclasses.fields(family) if f.name in names and f.name not in extra}
    return params_type(**values, **extra)


def new_seed(rng: np.random.Generator) -> int:
    """A seed for a renderer's own noise (speckle, texture), stored in the parameters."""
    return int(rng.integers(0, 2**31 - 1))


# ---- parameters <-> JSON ------------------------------------------------------------------------


def params_to_dict(params: Any) -> dict:
    """A frozen parameter dataclass (nested dataclasses and tuples allowed) as plain JSON types."""
    if not dataclasses.is_dataclass(params):
        raise InputError(expected("a parameter dataclass", type(params).__name__))

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        return value

    return {"type": type(params).__name__, **plain(params)}


def _build(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise FormatError(expected(f"an object for {hint.__name__}", type(value).__name__))
        return params_from_dict(hint, value)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], item) for item in value)
        if args:
            return tuple(_build(arg, item) for arg, item in zip(args, value))
        return tuple(value)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None:
            return None
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _build(options[0], value) if len(options) == 1 else value
    return value


def params_from_dict(params_type: type[P], data: dict) -> P:
    """Rebuild a parameter dataclass from :func:`params_to_dict` output (its ``type`` is checked)."""
    if not isinstance(data, dict):
        raise FormatError(expected(f"a JSON object of {params_type.__name__}", type(data).__name__))
    stated = data.get("type", params_type.__name__)
    if stated != params_type.__name__:
        raise FormatError(expected(f"parameters of type {params_type.__name__}", repr(stated)))
    hints = typing.get_type_hints(params_type)
    fields = dataclasses.fields(params_type)
    missing = [f.name for f in fields if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise FormatError(expected(f"{params_type.__name__} fields {', '.join(missing)}", "none"))
    return params_type(**{f.name: _build(hints[f.name], data[f.name]) for f in fields if f.name in data})


def write_params(path: Path | str, params: Any, *, inputs: Sequence[Path] = ()) -> Path:
    """Save parameters as JSON (atomically) beside what they rendered."""
    from medimg.common.tables import write_json

    return write_json(path, params_to_dict(params), inputs=inputs)


def read_params(path: Path | str, params_type: type[P]) -> P:
    path = Path(path)
    if not path.is_file():
        raise InputError(expected("an existing parameter JSON file", f"'{path}' which does not exist"))
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FormatError(expected("a JSON parameter file", f"'{path.name}' which is not JSON")) from None
    return params_from_dict(params_type, data)
