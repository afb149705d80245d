"""Wall-clock seconds per pipeline stage, for run reports."""

from __future__ import annotations

import time
from contextlib import contextmanager

from medimg.common import console


class StageClock:
    """Seconds per named stage; a stage entered several times (once per slice chunk, say) adds up.

    ``announce`` writes ``[stage]`` on stderr as each stage starts, for long single-pass runs.
    """

    def __init__(self, *, announce: bool = False) -> None:
        self.seconds: dict[str, float] = {}
        self.announce = announce

    @contextmanager
    def stage(self, name: str):
        if self.announce:
            console.info(f"[{name}]")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)

    def add(self, seconds: dict[str, float]) -> None:
        """Add another clock's stages (a Dask worker's, say) to these."""
        for name, value in seconds.items():
            self.seconds[name] = round(self.seconds.get(name, 0.0) + value, 3)

    @property
    def total(self) -> float:
        return round(sum(self.seconds.values()), 3)
