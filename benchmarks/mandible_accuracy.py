"""Accuracy of the shipped (or given) mandible weights on held-out synthetic head CTs, against thresholding.

    python benchmarks/mandible_accuracy.py [--seeds 101,102,103] [--metal-seeds 103] [--shape 48,256,256] [--weights W]

For each head: ``segment`` (the full pipeline from the DICOM series) versus the baseline "largest
connected component above 300 HU". Prints ACC, precision, recall, MIoU and Dice per head and
pooled over all voxels; the model card quotes it. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    from medimg.common.dicom_series import read_ct_series
    from medimg.common.metrics import ConfusionCounts
    from medimg.common.nifti import read_nifti
    from medimg.mandible.evaluate import segmentation_scores
    from medimg.mandible.inference import InferenceOptions, mandible_network
    from medimg.mandible.pipeline import segment
    from medimg.mandible.synth import threshold_baseline, write_synthetic_series

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="101,102,103")
    parser.add_argument("--metal-seeds", default="103", help="seeds written with metal fillings and streaks")
    parser.add_argument("--shape", default="48,256,256")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--style", default="default", help="phantom family: default, wide or held-out (its grid is drawn, --shape ignored)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    metal_seeds = {int(s) for s in args.metal_seeds.split(",") if s}
    shape = tuple(int(v) for v in args.shape.split(","))
    network = mandible_network(InferenceOptions(weights=args.weights, device=args.device))
    pooled = {"network": ConfusionCounts(0, 0, 0, 0), "threshold 300 HU": ConfusionCounts(0, 0, 0, 0)}
    columns = ("ACC", "precision", "recall", "MIoU", "Dice")
    print(f"{'head':20s} {'method':18s} " + " ".join(f"{c:>9s}" for c in columns) + "   seconds")
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            head = Path(scratch) / f"head{seed}"
            write_synthetic_series(head, seed=seed, shape=shape, metal=seed in metal_seeds, style=args.style)
            truth, _ = read_nifti(head / "mandible_mask.nii.gz")
            truth = truth.astype(bool)
            started = time.perf_counter()
            segment(head / "dicom", head / "out", predictor=network, formats=("nifti",))
            seconds = time.perf_counter() - started
            predicted, _ = read_nifti(head / "out" / "mask.nii.gz")
            baseline = threshold_baseline(read_ct_series(head / "dicom").volume)
            label = f"{args.style} {seed}" + (" (metal)" if seed in metal_seeds else "")
            for method, mask, took in (("network", predicted.astype(bool), seconds), ("threshold 300 HU", baseline, None)):
                counts = ConfusionCounts.from_masks(mask, truth)
                pooled[method] = pooled[method] + counts
                scores = segmentation_scores(counts)
                print(f"{label:20s} {method:18s} " + " ".join(f"{scores[c]:9.4f}" for c in columns)
                      + (f"   {took:7.2f}" if took is not None else ""))
    for method, counts in pooled.items():
        scores = segmentation_scores(counts)
        print(f"{'pooled':20s} {method:18s} " + " ".join(f"{scores[c]:9.4f}" for c in columns))


if __name__ == "__main__":
    main()
