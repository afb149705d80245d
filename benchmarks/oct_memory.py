"""Peak memory of ``oct extract`` on a full-size volume (issue 12: <= 4 GB for 1400 x 500 x 1800).

    python benchmarks/oct_memory.py [--volume-bscans 1400] [--bscan-shape 500,1800] [--tiling band,paper]
                                    [--network-batch 4] [--real [--test-time none]]

A SPEC-like phantom slab (``--style spec``, 96 B-scans of 500 x 1800) is repeated along Y into a
full-size TIFF on disk (1.26 GB), and ``extract`` runs on it in a fresh process per tiling, with
every stage that holds whole-volume arrays doing its real work: the scan is read and copied into
memory as in-place denoising copies it, the surface found, tiles cut, blended B-scan rows at a
time into the depth window, thresholded, labelled by slabs, projected, and the glands TIFF, the
fingerprint and the B-scan overlay written. Unless ``--real``, two things are replaced so the run
takes minutes, not an hour, on 2 cores, and neither holds volume-sized arrays: BM3D (it works in
place, a few B-scans at a time; its time: ``benchmarks/bm3d_speed.py``) by nothing, and the
network by a smooth function of the input (``network_free_logits``). The light network's own
peak for one batch of the largest band tile is then measured in another fresh process and printed
beside it: the pipeline's peak plus the network's growth is the figure to hold against 4 GB. Peaks
are each process's own high-water mark (``VmHWM``). With ``--real`` the whole ``extract`` runs as a
user's would (``--test-time none``: the fast path of ``oct_full_volume.py``, one pass per tile), its
time and peak are the figures themselves, and its glands are scored against the phantom's truth,
repeated as the scan is. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from peak_memory import peak_rss_mib


def network_free_logits(batch: np.ndarray) -> np.ndarray:
    """Logits without a network: the tissue-scaled input averaged over 5^3 voxels, bright = duct."""
    import torch

    with torch.inference_mode():
        smooth = torch.nn.functional.avg_pool3d(torch.from_numpy(np.ascontiguousarray(batch)), 5, stride=1, padding=2, count_include_pad=False)
    return (8.0 * (smooth - 1.2)).numpy()


def run_extract(scan: str, output: str, tiling: str, network: bool, test_time: str | None = None) -> dict:
    """``extract`` in this (fresh) process, with BM3D and the network replaced (by nothing, and by
    :func:`network_free_logits`) unless ``network``; its stage times, peak RSS and glands TIFF."""
    import medimg.oct_glands.pipeline as pipeline
    from medimg.oct_glands.pipeline import DenoiseOptions, ExtractOptions, InferenceOptions

    if not network:
        pipeline.denoise_volume = lambda volume, **_: volume  # BM3D works in place in the scan extract read into memory
    started = time.perf_counter()
    inference = InferenceOptions(**({"test_time": test_time} if test_time else {}))
    result = pipeline.extract(Path(scan), Path(output), options=ExtractOptions(denoise=DenoiseOptions(), inference=inference, tiling=tiling),
                              predictor=None if network else network_free_logits)
    return {"seconds": time.perf_counter() - started, "stages": result.report.seconds_per_stage, "results": result.report.results,
            "peak_rss_mib": peak_rss_mib(), "glands": str(result.glands_tif)}


def mirrored(pages: np.ndarray, y: int) -> np.ndarray:
    """B-scan ``y`` of ``pages`` repeated along Y, every other copy mirrored so that the surface and
    the ducts stay continuous from one copy to the next."""
    n = len(pages)
    return pages[y % n] if (y // n) % 2 == 0 else pages[n - 1 - y % n]


def dice_against_truth(glands_tif: str, truth: np.ndarray, n_y: int) -> float:
    """Voxel Dice of the glands TIFF against the mirrored slab truth, one B-scan at a time."""
    from medimg.common.volumes import read_volume

    glands = read_volume(glands_tif)
    both = predicted = true = 0
    for y in range(n_y):
        found, real = np.asarray(glands[y]) > 0, mirrored(truth, y)
        both += int(np.count_nonzero(found & real))
        predicted += int(np.count_nonzero(found))
        true += int(np.count_nonzero(real))
    return 2 * both / max(predicted + true, 1)


def network_peak(tile_shape: tuple[int, int, int], batch: int) -> dict:
    """Peak RSS of this (fresh) process after the shipped light network predicts one batch of tiles."""
    from medimg.oct_glands.inference import InferenceOptions, oct_network

    network = oct_network(InferenceOptions(device="cpu"))
    network(np.zeros((1, 1, 8, 8, 8), np.float32))  # torch and the weights loaded: what follows is the activations
    before = peak_rss_mib()
    started = time.perf_counter()
    network(np.random.default_rng(0).normal(size=(batch, 1, *tile_shape)).astype(np.float32))
    return {"seconds": time.perf_counter() - started, "before_mib": before, "peak_rss_mib": peak_rss_mib()}


def in_fresh_process(function, *args) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main() -> None:
    from medimg.common.volumes import write_volume_pages
    from medimg.oct_glands.phantom import STYLES, make_phantom

    parser = argparse.ArgumentParser()
    parser.add_argument("--volume-bscans", type=int, default=1400)
    parser.add_argument("--bscan-shape", default="500,1800", help="Z,X of one B-scan")
    parser.add_argument("--slab-bscans", type=int, default=96, help="B-scans synthesised, then repeated along Y")
    parser.add_argument("--tiling", default="band,paper")
    parser.add_argument("--style", default="spec")
    parser.add_argument("--seed", type=int, default=401)
    parser.add_argument("--network-batch", type=int, default=1)
    parser.add_argument("--real", action="store_true", help="run BM3D and the shipped network too (about an hour on 2 cores)")
    parser.add_argument("--test-time", default=None, choices=("none", "flips", "dihedral"),
                        help="network passes per tile (extract's default unless given; the fast path: none)")
    args = parser.parse_args()
    n_z, n_x = (int(v) for v in args.bscan_shape.split(","))
    shape = (args.volume_bscans, n_z, n_x)
    started = time.perf_counter()
    phantom = make_phantom((args.slab_bscans, n_z, n_x), seed=args.seed, family=STYLES[args.style])
    slab, truth = phantom.volume, phantom.glands > 0
    del phantom
    with tempfile.TemporaryDirectory() as tmp:
        pages = (mirrored(slab, y) for y in range(shape[0]))
        scan = write_volume_pages(Path(tmp) / "scan.tif", pages, shape=shape, dtype=np.uint8)
        del slab
        print(f"volume (Y, Z, X) = {shape}, {np.prod(shape) / 2**30:.2f} GiB uint8, written in {time.perf_counter() - started:.0f} s", flush=True)
        largest = None
        for tiling in args.tiling.split(","):
            outcome = in_fresh_process(run_extract, str(scan), str(Path(tmp) / tiling), tiling, args.real, args.test_time)
            stages = "  ".join(f"{stage} {seconds:.1f}" for stage, seconds in outcome["stages"].items())
            results = outcome["results"]
            print(f"{tiling:6s} peak RSS {outcome['peak_rss_mib']:7.0f} MiB  {outcome['seconds']:6.0f} s  {results['blocks']} tiles  "
                  f"{results['pores']} glands  {results['mask_voxels']} mask voxels", flush=True)
            print(f"       seconds per stage: {stages}; depths held {results['window_depths']}", flush=True)
            if args.real:
                print(f"       Dice against the mirrored phantom truth {dice_against_truth(outcome['glands'], truth, shape[0]):.3f}", flush=True)
            if tiling == "band":
                largest = tuple(results["largest_tile"])
        tile = largest or (80, 80, 80)
        network = in_fresh_process(network_peak, tile, args.network_batch)
        print(f"light network, one batch of {args.network_batch} tiles {tile}: peak RSS {network['peak_rss_mib']:.0f} MiB "
              f"(process {network['before_mib']:.0f} MiB before: it grows {network['peak_rss_mib'] - network['before_mib']:.0f} MiB), "
              f"{network['seconds']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
