"""Accuracy of the shipped (or given) weights on held-out phantoms, against plain thresholding.

    python benchmarks/oct_accuracy.py [--seeds 201,202,203] [--shape 160,128,160] [--weights W]

For each phantom: the full pipeline (BM3D, surface, ROIs, network, Otsu, prune, project) versus
the baseline "Otsu threshold of the raw volume, then the same pruning and projection". Prints
voxel Dice/IoU and pore RT/RF (radius 9.8989) per phantom and pooled; the model card quotes it.
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
    from medimg.common.volumes import write_volume
    from medimg.oct_glands.evaluate import PORE_RADIUS, pore_scores
    from medimg.oct_glands.phantom import make_phantom
    from medimg.oct_glands.pipeline import ExtractOptions, InferenceOptions, extract
    from medimg.oct_glands.project import gland_pores
    from medimg.oct_glands.prune import label_glands

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="201,202,203")
    parser.add_argument("--shape", default="160,128,160")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    options = ExtractOptions(inference=InferenceOptions(weights=args.weights, device=args.device))

    totals = {"network": [ConfusionCounts(0, 0, 0, 0), 0, 0, 0, 0], "otsu_raw": [ConfusionCounts(0, 0, 0, 0), 0, 0, 0, 0]}
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        phantom = make_phantom(shape, seed=seed)
        truth = phantom.glands > 0
        true_xy = phantom.pores[:, :2]
        with tempfile.TemporaryDirectory() as tmp:
            scan = write_volume(Path(tmp) / "scan.tif", phantom.volume)
            result = extract(scan, Path(tmp) / "out", options=options)
            from medimg.common.volumes import read_volume

            network_labels = np.asarray(read_volume(result.glands_tif))
            network_pores = [(p["x"], p["y"]) for p in gland_pores(network_labels)]
        baseline_labels = label_glands(phantom.volume >= threshold_otsu(phantom.volume))
        baseline_pores = [(p["x"], p["y"]) for p in gland_pores(baseline_labels)]
        for name, labels, pores in (("network", network_labels, network_pores), ("otsu_raw", baseline_labels, baseline_pores)):
            counts = ConfusionCounts.from_masks(labels > 0, truth)
            scores = pore_scores(np.array(pores, float).reshape(-1, 2), true_xy, radius=PORE_RADIUS)
            total = totals[name]
            total[0] = total[0] + counts
            total[1] += scores["correct_predicted"]
            total[2] += scores["true_pores"]
            total[3] += scores["wrong_predicted"]
            total[4] += scores["predicted_pores"]
            rows.append({"seed": seed, "method": name, "dice": round(counts.dice, 4), "iou": round(counts.iou, 4),
                         "RT": round(scores["RT"], 4), "RF": round(scores["RF"], 4) if scores["predicted_pores"] else None,
                         "pores_pred": scores["predicted_pores"], "pores_true": scores["true_pores"]})
            print(json.dumps(rows[-1]), flush=True)
    for name, (counts, correct, true, wrong, predicted) in totals.items():
        print(json.dumps({"pooled": name, "dice": round(counts.dice, 4), "iou": round(counts.iou, 4),
                          "RT": round(correct / true, 4), "RF": round(wrong / predicted, 4) if predicted else None}))


if __name__ == "__main__":
    main()
