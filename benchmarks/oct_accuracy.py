"""Accuracy of the shipped (or given) weights on phantoms of a family, against plain thresholding.

    python benchmarks/oct_accuracy.py [--style spec] [--seeds 401,402] [--shape 128,400,128]
                                      [--weights W] [--noise-region air] [--surface-method paper] [--tiling band]

For each phantom of ``--style`` (medimg.oct_glands.phantom.STYLES; ``spec`` is the held-out
family of the shipped weights, ``wide`` the family they were trained on): the full ``extract``
pipeline (BM3D, surface, ROIs, network, Otsu, prune, project) with default options unless
given, versus the baseline "Otsu threshold of the raw volume, then the same pruning and
projection". Prints voxel Dice/IoU and pore RT/RF (radius 9.8989), the share of A-scans whose
detected surface is within 5 px of the truth, per phantom and pooled; the model card quotes it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    from skimage.filters import threshold_otsu

    from medimg.common.metrics import ConfusionCounts
    from medimg.common.volumes import read_volume, write_volume
    from medimg.oct_glands.evaluate import PORE_RADIUS, pore_scores
    from medimg.oct_glands.phantom import STYLES, make_phantom
    from medimg.oct_glands.pipeline import DenoiseOptions, ExtractOptions, InferenceOptions, SurfaceOptions, extract
    from medimg.oct_glands.project import gland_pores
    from medimg.oct_glands.prune import label_glands
    from medimg.oct_glands.surface import detect_surface

    parser = argparse.ArgumentParser()
    parser.add_argument("--style", default="paper", choices=sorted(STYLES))
    parser.add_argument("--seeds", default="201,202,203")
    parser.add_argument("--shape", default="160,128,160")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--noise-region", default=None, help="default: the pipeline's")
    parser.add_argument("--surface-method", default="robust")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiling", default=None, help="band (tiles over the surface band) or paper (80^3 blocks at stride 40); default: the pipeline's")
    parser.add_argument("--bm3d-stage", default="full", help="full (hard thresholding + Wiener) or hard")
    parser.add_argument("--denoise-rows", default=None, choices=("surface", "tissue", "all"), help="default: the pipeline's")
    parser.add_argument("--test-time", default=None, help="none, flips or dihedral (default: the pipeline's)")
    parser.add_argument("--min-size", type=int, default=None, help="drop glands of fewer voxels (default: the pipeline's; 120: the paper's)")
    parser.add_argument("--min-depth", type=int, default=None, help="drop glands reaching less deep below the surface (default: the pipeline's; 0: off)")
    parser.add_argument("--min-probability", type=float, default=None, help="drop glands of a lower mean probability (default: the pipeline's; 0: off)")
    parser.add_argument("--field-margin", type=int, default=None, help="A-scans band tiles reach past the field's edges (default: the pipeline's; 0: none)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Otsu-of-the-raw-volume baseline")
    parser.add_argument("--keep", type=Path, default=None, help="keep each phantom (scan, truth) and extract's outputs in DIR/SEED/")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    denoise = DenoiseOptions(stage=args.bm3d_stage, **({} if args.noise_region is None else {"noise_region": args.noise_region}),
                             **({} if args.denoise_rows is None else {"rows": args.denoise_rows}))
    options = ExtractOptions(denoise=denoise, surface=SurfaceOptions(method=args.surface_method),
                             inference=InferenceOptions(weights=args.weights, device=args.device,
                                                        **({} if args.test_time is None else {"test_time": args.test_time})),
                             **({} if args.tiling is None else {"tiling": args.tiling}),
                             **({} if args.min_probability is None else {"min_probability": args.min_probability}),
                             **({} if args.min_depth is None else {"min_depth": args.min_depth}),
                             **({} if args.min_size is None else {"min_size": args.min_size}),
                             **({} if args.field_margin is None else {"field_margin": args.field_margin}))
    methods = ("network",) if args.no_baseline else ("network", "otsu_raw")
    totals = {name: [ConfusionCounts(0, 0, 0, 0), 0, 0, 0, 0] for name in methods}
    surface_hits = surface_total = 0
    for seed in (int(s) for s in args.seeds.split(",")):
        phantom = make_phantom(shape, seed=seed, family=STYLES[args.style])
        truth = phantom.glands > 0
        true_xy = phantom.pores[:, :2]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) if args.keep is None else args.keep / str(seed)
            scan = write_volume(folder / "scan.tif", phantom.volume)
            if args.keep is not None:
                write_volume(folder / "truth_glands.tif", phantom.glands)
                np.savetxt(folder / "truth_pores.csv", phantom.pores, delimiter=",", header="x,y,z", comments="", fmt="%.3f")
            result = extract(scan, folder / "out", options=options)
            labels = {"network": np.asarray(read_volume(result.glands_tif))}
        surface_error = np.abs(detect_surface(phantom.volume, method=args.surface_method) - phantom.surface)
        surface_hits += int(np.count_nonzero(surface_error <= 5))
        surface_total += surface_error.size
        if "otsu_raw" in methods:
            labels["otsu_raw"] = label_glands(phantom.volume >= threshold_otsu(phantom.volume))
        for name in methods:
            pores = np.array([(p["x"], p["y"]) for p in gland_pores(labels[name])], float).reshape(-1, 2)
            counts = ConfusionCounts.from_masks(labels[name] > 0, truth)
            scores = pore_scores(pores, true_xy, radius=PORE_RADIUS)
            total = totals[name]
            total[0] = total[0] + counts
            total[1] += scores["correct_predicted"]
            total[2] += scores["true_pores"]
            total[3] += scores["wrong_predicted"]
            total[4] += scores["predicted_pores"]
            row = {"style": args.style, "seed": seed, "method": name, "dice": round(counts.dice, 4), "iou": round(counts.iou, 4),
                   "RT": round(scores["RT"], 4), "RF": round(scores["RF"], 4) if scores["predicted_pores"] else None,
                   "pores_pred": scores["predicted_pores"], "pores_true": scores["true_pores"],
                   "surface_within_5px": round(float(np.mean(surface_error <= 5)), 4),
                   "tissue_levels": result.summary.get("tissue_levels"),
                   "dropped_faint_shallow": [result.summary.get("faint_glands_dropped"), result.summary.get("shallow_glands_dropped")]}
            print(json.dumps(row), flush=True)
    for name, (counts, correct, true, wrong, predicted) in totals.items():
        print(json.dumps({"pooled": name, "style": args.style, "weights": str(args.weights or "shipped"),
                          "noise_region": denoise.noise_region, "denoise_rows": denoise.rows, "tiling": options.tiling, "test_time": options.inference.test_time, "min_probability": options.min_probability, "min_depth": options.min_depth, "min_size": options.min_size, "field_margin": options.field_margin, "bm3d_stage": args.bm3d_stage, "dice": round(counts.dice, 4), "iou": round(counts.iou, 4),
                          "RT": round(correct / true, 4), "RF": round(wrong / predicted, 4) if predicted else None,
                          "true_pores": true, "predicted_pores": predicted,
                          "surface_within_5px": round(surface_hits / surface_total, 4)}))


if __name__ == "__main__":
    main()
