"""Per-stage time and peak memory of the OCT pipeline on a synthetic volume, and light vs standard inference.

    python benchmarks/oct_stages.py [--shape Y,Z,X] [--device auto] [--repeats 3]

Prints one line per stage (seconds, peak traced Python memory in MiB for NumPy stages, peak CUDA
memory on GPU) and the per-block inference time of both networks. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def _measure(function):
    tracemalloc.start()
    started = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    import torch

    from medimg.common.device import resolve_device
    from medimg.common.predictor import network_predictor
    from medimg.common.tiling import tile_reader
    from medimg.oct_glands.denoise import denoise_volume
    from medimg.oct_glands.inference import network_input, predict_probability
    from medimg.oct_glands.intensity import tissue_levels
    from medimg.oct_glands.models import INPUT_PREPROCESSING, build_model
    from medimg.oct_glands.phantom import make_phantom
    from medimg.oct_glands.project import gland_pores
    from medimg.oct_glands.prune import label_glands
    from medimg.oct_glands.roi import extract_blocks, roi_corners
    from medimg.oct_glands.surface import detect_surface
    from medimg.oct_glands.threshold import binarize

    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="160,128,160")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--denoise-bscans", type=int, default=8, help="B-scans timed for BM3D (extrapolated to the volume)")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    device = resolve_device(args.device)
    torch.manual_seed(0)

    volume = make_phantom(shape, seed=123).volume
    print(f"volume (Y, Z, X) = {shape}, device = {device}, torch threads = {torch.get_num_threads()}")

    subset = volume[: args.denoise_bscans]
    _, seconds, peak = _measure(lambda: denoise_volume(subset, sigma=25.0))
    print(f"denoise   {seconds / len(subset):8.3f} s per B-scan ({shape[1]}x{shape[2]}), "
          f"~{seconds / len(subset) * shape[0]:.1f} s for the volume; peak {peak:.1f} MiB")

    surface, seconds, peak = _measure(lambda: detect_surface(volume))
    print(f"surface   {seconds:8.3f} s   peak {peak:7.1f} MiB")
    corners, seconds, peak = _measure(lambda: roi_corners(surface, volume.shape))
    print(f"crop      {seconds:8.3f} s   peak {peak:7.1f} MiB   ({len(corners)} blocks)")
    levels = tissue_levels(volume, surface, depth=80)

    for name in ("light", "standard"):
        network = build_model(name)
        predictor = network_predictor(network, device, channels_last=True)
        for batch_size in (1, 4):
            predictor(network_input(extract_blocks(volume, corners[:batch_size], size=80), INPUT_PREPROCESSING, levels))  # warm-up
            timings = []
            for _ in range(args.repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                started = time.perf_counter()
                probability = predict_probability(tile_reader(volume, corners, (80,) * 3), corners, volume.shape, block_size=80,
                                                  predictor=predictor, batch_size=batch_size, levels=levels)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                timings.append(time.perf_counter() - started)
            best = min(timings)
            extra = f", peak CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if device.type == "cuda" else ""
            print(f"infer     {name:8s} batch {batch_size}: {best:8.3f} s for {len(corners)} blocks = {best / len(corners) * 1000:7.1f} ms/block{extra}")

    (mask, _), seconds, peak = _measure(lambda: binarize(probability))
    print(f"threshold {seconds:8.3f} s   peak {peak:7.1f} MiB")
    labels, seconds, peak = _measure(lambda: label_glands(mask))
    print(f"prune     {seconds:8.3f} s   peak {peak:7.1f} MiB")
    _, seconds, peak = _measure(lambda: gland_pores(labels, probability=probability))
    print(f"project   {seconds:8.3f} s   peak {peak:7.1f} MiB")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
