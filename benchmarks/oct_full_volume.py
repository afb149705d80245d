"""OCT at real size (issue 12): the paper-faithful and the fast path side by side, B-scans of the real size.

    python benchmarks/oct_full_volume.py [--bscans 64] [--bscan-shape 500,1800] [--volume-bscans 1400]
                                         [--faithful-denoiser bm3d-reference] [--paths faithful,fast]
                                         [--weights W] [--device auto]

A SPEC-like phantom (``--style spec``: dark display, bright band, sagging surface) of ``--bscans``
B-scans of 500 x 1800 is written as a TIFF, and each path runs the whole ``extract`` on it in a
fresh process (so its peak resident memory is its own):

* faithful: the paper's chain: BM3D over every row of every B-scan (``--faithful-denoiser``, by
  default the ``bm3d`` package), 80^3 blocks at stride 40 (each voxel predicted ~4 times), one
  pass per block (``--test-time none``);
* fast: our torch BM3D over the rows the ROIs read (``--denoise-rows surface``), band tiles
  (``--tiling band``: each voxel predicted ~1.3 times), BatchNorm folded, one pass per tile;
* default (``--paths faithful,fast,default``): ``extract`` as shipped, the fast path with each
  tile's logits averaged over its 4 mirror images (``--test-time flips``).

The per-stage seconds are also printed scaled to a ``--volume-bscans`` volume (1400: a real
fingertip scan): inference by the ratio of tiles (a slab has proportionally more edge tiles), every
other stage by the ratio of B-scans. Peak RSS is measured on the slab and scaled by the ratio of
B-scans, an estimate: ``benchmarks/oct_memory.py`` measures it on a full-size volume. Dice: the fast path's glands against the faithful path's, and each against the truth.
Then one 80^3 tile of the light and the standard network through the predictor. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from peak_memory import peak_rss_mib

PATHS = {
    "faithful": {"rows": "all", "tiling": "paper", "test_time": "none"},
    "fast": {"rows": "surface", "tiling": "band", "denoiser": "bm3d", "test_time": "none"},
    "default": {"rows": "surface", "tiling": "band", "denoiser": "bm3d", "test_time": "flips"},  # extract as shipped
}


def run_path(name: str, scan: str, output: str, denoiser: str, weights: str | None, device: str, fast_rows: str) -> dict:
    """One ``extract`` in this (fresh) process: its summary and peak RSS."""
    from medimg.oct_glands.pipeline import DenoiseOptions, ExtractOptions, InferenceOptions, extract

    settings = {**PATHS[name], **({"rows": fast_rows} if name != "faithful" else {})}
    options = ExtractOptions(
        denoise=DenoiseOptions(denoiser=settings.get("denoiser", denoiser), rows=settings["rows"], device=device),
        inference=InferenceOptions(weights=Path(weights) if weights else None, device=device, test_time=settings["test_time"]),
        tiling=settings["tiling"],
    )
    started = time.perf_counter()
    result = extract(Path(scan), Path(output), options=options)
    return {"seconds": time.perf_counter() - started, "stages": result.report.seconds_per_stage, "results": result.report.results,
            "peak_rss_mib": peak_rss_mib(), "glands": str(result.glands_tif)}


def tile_count(tiling: str, n_y: int, n_x: int) -> int:
    """Tiles of ``tiling`` over an en-face area of ``n_y`` x ``n_x`` A-scans."""
    from medimg.common.tiling import tile_starts
    from medimg.oct_glands.roi import BAND_OVERLAP, BAND_SIDE, BLOCK_SIZE, INFERENCE_STRIDE

    side, stride = (BLOCK_SIZE, INFERENCE_STRIDE) if tiling == "paper" else (BAND_SIDE, BAND_SIDE - BAND_OVERLAP)
    return len(tile_starts(n_y, side, stride)) * len(tile_starts(n_x, side, stride))


def scaled_minutes(stages: dict, tiling: str, shape: tuple[int, int, int], volume_bscans: int) -> float:
    """Minutes the stages would take on a volume of ``volume_bscans`` B-scans of the same size."""
    bscans = volume_bscans / shape[0]
    tiles = tile_count(tiling, volume_bscans, shape[2]) / tile_count(tiling, shape[0], shape[2])
    scale = {"infer": tiles, "noise": 1.0}  # the noise sigma is measured on a fixed sample of B-scans
    return sum(seconds * scale.get(stage, bscans) for stage, seconds in stages.items()) / 60


def tile_timings(device_name: str, repeats: int = 3) -> list[str]:
    import torch

    from medimg.common.batchnorm_folding import fold_batchnorm
    from medimg.common.device import resolve_device
    from medimg.common.predictor import network_predictor
    from medimg.oct_glands.models import build_model

    device = resolve_device(device_name)
    tile = np.random.default_rng(0).normal(size=(1, 1, 80, 80, 80)).astype(np.float32)
    lines = []
    for name in ("light", "standard"):
        for folded in (False, True):
            torch.manual_seed(0)
            network = build_model(name).eval()
            predictor = network_predictor(fold_batchnorm(network) if folded else network, device, channels_last=True)
            predictor(tile)
            started = time.perf_counter()
            for _ in range(repeats):
                predictor(tile)
            seconds = (time.perf_counter() - started) / repeats
            lines.append(f"{name:8s} {'BN folded' if folded else 'BN      '}  {seconds:7.3f} s per 80^3 tile")
    return lines


def main() -> None:
    from medimg.common.metrics import ConfusionCounts
    from medimg.common.volumes import read_volume, write_volume
    from medimg.oct_glands.phantom import STYLES, make_phantom

    parser = argparse.ArgumentParser()
    parser.add_argument("--bscans", type=int, default=96, help="B-scans synthesised and run (>= 80: one block; ducts need room)")
    parser.add_argument("--bscan-shape", default="500,1800", help="Z,X of one B-scan")
    parser.add_argument("--volume-bscans", type=int, default=1400, help="B-scans of the volume the times are scaled to")
    parser.add_argument("--faithful-denoiser", default="bm3d-reference")
    parser.add_argument("--paths", default="faithful,fast")
    parser.add_argument("--style", default="spec")
    parser.add_argument("--seed", type=int, default=401)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--fast-rows", default=PATHS["fast"]["rows"], choices=("surface", "tissue", "all"), help="rows the fast path denoises")
    args = parser.parse_args()
    n_z, n_x = (int(v) for v in args.bscan_shape.split(","))
    shape = (args.bscans, n_z, n_x)
    scale = args.volume_bscans / args.bscans

    phantom = make_phantom(shape, seed=args.seed, family=STYLES[args.style])
    truth = phantom.glands > 0
    print(f"phantom {args.style} seed {args.seed}, (Y, Z, X) = {shape}, {len(phantom.pores)} ducts; times scaled x{scale:.1f} "
          f"(B-scans) to {args.volume_bscans} B-scans", flush=True)
    outcomes = {}
    with tempfile.TemporaryDirectory() as tmp:
        scan = write_volume(Path(tmp) / "scan.tif", phantom.volume)
        del phantom
        for name in args.paths.split(","):
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                outcome = pool.submit(run_path, name, str(scan), str(Path(tmp) / name), args.faithful_denoiser, args.weights,
                                      args.device, args.fast_rows).result()
            outcome["mask"] = np.asarray(read_volume(outcome["glands"])) > 0
            outcomes[name] = outcome
            stages = "  ".join(f"{stage} {seconds:.1f}" for stage, seconds in outcome["stages"].items())
            dice = ConfusionCounts.from_masks(outcome["mask"], truth).dice
            minutes = scaled_minutes(outcome["stages"], PATHS[name]["tiling"], shape, args.volume_bscans)
            print(f"{name:9s} {outcome['seconds']:8.1f} s on the slab, ~{minutes:6.1f} min for the volume; "
                  f"peak RSS {outcome['peak_rss_mib']:7.0f} MiB on the slab (memory does not scale with B-scans: see oct_memory.py); "
                  f"Dice vs truth {dice:.4f}; pores {outcome['results']['pores']}; {outcome['results']['blocks']} tiles", flush=True)
            rows = args.fast_rows if name != "faithful" else PATHS[name]["rows"]
            print(f"          denoised rows: {rows}; seconds per stage: {stages}", flush=True)
    for name in ("fast", "default"):
        if {"faithful", name} <= outcomes.keys():
            agreement = ConfusionCounts.from_masks(outcomes[name]["mask"], outcomes["faithful"]["mask"]).dice
            print(f"Dice {name} vs faithful: {agreement:.4f}")
    for line in tile_timings(args.device):
        print(line)
    print(json.dumps({name: {key: value for key, value in outcome.items() if key not in ("mask", "glands")}
                      for name, outcome in outcomes.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
