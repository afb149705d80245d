"""Time of the three synthetic-data generators at their default sizes.

    python benchmarks/synth_speed.py [--repeats 3]

Prints the best of ``--repeats`` runs per generator (after one warm-up run that pays for imports
and cached tables). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _best(function, repeats: int) -> float:
    function()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    from medimg.acne.synth import synth_skin_photo
    from medimg.mandible.phantom import make_head_ct
    from medimg.oct_glands.phantom import make_phantom

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = (
        ("oct phantom 160x128x160", lambda: make_phantom((160, 128, 160), seed=1)),
        ("acne photo 256x256, 65 lesions", lambda: synth_skin_photo(65, rng=np.random.default_rng(0), size=256)),
        ("head CT 48x256x256", lambda: make_head_ct(seed=0)),
    )
    for name, function in rows:
        print(f"{name:32s} {_best(function, args.repeats):8.3f} s")


if __name__ == "__main__":
    main()
