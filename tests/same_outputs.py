"""Comparing two runs' output folders: every file byte for byte, run reports without their timings."""

import json
import re
from pathlib import Path

# Wall-clock fields differ between any two runs, serial or not.
TIMING_KEYS = ("seconds_per_stage",)
STAGE_TABLE = re.compile(rb'<table class="stages">.*?</table>', re.S)  # an HTML report's stage times


def assert_same_outputs(first: Path, second: Path) -> int:
    """Assert both folders hold the same files with the same bytes (JSON reports compared without
    their timing fields); returns how many files were compared."""
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    for name in names:
        a, b = (first / name).read_bytes(), (second / name).read_bytes()
        if name.endswith(".json"):
            a, b = (_without_timings(json.loads(x)) for x in (a, b))
        elif name.endswith(".html"):
            a, b = (STAGE_TABLE.sub(b"", x) for x in (a, b))
        assert a == b, f"{name} differs"
    return len(names)


def _without_timings(report: dict) -> dict:
    return {key: value for key, value in report.items() if key not in TIMING_KEYS}
