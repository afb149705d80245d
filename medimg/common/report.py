"""One run report for every pipeline: what ran, on what, with which model, how long, what it found.

A :class:`RunReport` is written as ``summary.json`` / ``report.json`` beside a run's outputs (and
later rendered as HTML). Its JSON is flat: the common fields first, then the pipeline's own
``results`` (gland counts, mandible volume, ...) at the top level, so a script reads
``report["volume_mm3"]`` as easily as ``report["seconds_per_stage"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMMON_FIELDS = ("medimg_version", "command", "input", "arch", "weights", "device", "seconds_per_stage", "options", "notes")


@dataclass
class RunReport:
    """What one run of a pipeline on one input did.

    Attributes
    ----------
    command : "oct extract", "mandible segment", ...
    input : the input path as given
    results : the pipeline's findings and settings, JSON types (keys must not clash with
        :data:`COMMON_FIELDS`)
    arch, weights, device : the model used ("custom predictor" when a test passes a callable)
    seconds_per_stage : from :class:`medimg.common.clock.StageClock`
    options : the run's options, JSON types
    notes : warnings a reader of the outputs must know
    """

    command: str
    input: str
    results: dict[str, Any] = field(default_factory=dict)
    arch: str = "n/a"
    weights: str = "custom predictor"
    device: str = "n/a"
    seconds_per_stage: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from medimg import __version__
        from medimg.common.errors import InputError, expected

        clash = sorted(set(self.results) & set(COMMON_FIELDS))
        if clash:
            raise InputError(expected("report results apart from the common fields", ", ".join(clash)))
        head = {"medimg_version": __version__, "command": self.command, "input": self.input}
        tail = {
            "arch": self.arch, "weights": self.weights, "device": self.device,
            "seconds_per_stage": self.seconds_per_stage, "options": self.options, "notes": self.notes,
        }
        return {**head, **self.results, **tail}

    def write_json(self, path: Path | str, *, inputs: Iterable[Path] = ()) -> Path:
        from medimg.common.tables import write_json

        return write_json(path, self.to_dict(), inputs=inputs)

    def use_model(self, predictor: object) -> None:
        """Take arch, weights and device from a loaded :class:`~medimg.common.predictor.LazyModel`."""
        from medimg.common.predictor import LazyModel

        if isinstance(predictor, LazyModel):
            model = predictor.load()
            self.arch, self.weights, self.device = model.arch, model.source, predictor.device
