"""Per-stage time of ``medimg mandible segment`` on a synthetic head CT, and network cost per slice.

    python benchmarks/mandible_segment.py [--shape 48,256,256] [--size 256] [--width 0.125]
                                          [--arch res-cbam-unet] [--device auto] [--weights FILE]

Writes a synthetic DICOM series into a temporary folder, segments it with all outputs (a random
network of the given arch/width/size unless --weights is given: the cost does not depend on the
values), and prints the report's per-stage seconds; then the network's forward time per slice
at batch 8. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    import torch

    from medimg.common.device import resolve_device
    from medimg.common.models import weights_metadata
    from medimg.common.predictor import network_predictor
    from medimg.common.weights import save_weights
    from medimg.mandible.inference import InferenceOptions, mandible_network
    from medimg.mandible.models import build_model
    from medimg.mandible.pipeline import segment
    from medimg.mandible.synth import write_synthetic_series

    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", default="48,256,256")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--arch", default="res-cbam-unet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", type=Path)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    device = resolve_device(args.device)
    torch.manual_seed(0)
    print(f"series (Z, Y, X) = {shape}, network {args.arch} width {args.width} at {args.size}, device = {device}, "
          f"torch threads = {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        write_synthetic_series(scratch / "head", seed=11, shape=shape)
        weights = args.weights
        network = build_model(args.arch, width=args.width)
        if weights is None:
            arch = f"mandible-{args.arch}"
            weights = save_weights(scratch / "random.safetensors", network.state_dict(), arch=arch,
                                   metadata=weights_metadata(arch, network, preprocessing={"input_size": args.size}))
        started = time.perf_counter()
        result = segment(scratch / "head" / "dicom", scratch / "out", formats=("nifti", "stl", "png", "json"),
                         predictor=mandible_network(InferenceOptions(weights=weights, device=args.device)))
        total = time.perf_counter() - started
        for stage, seconds in result.report["seconds_per_stage"].items():
            print(f"  {stage:12s} {seconds:8.3f} s")
        print(f"  {'total':12s} {total:8.3f} s  ({result.report['voxels']} mask voxels)")

        predict = network_predictor(network, device, batch_size=8)
        batch = torch.randn(8, 3, args.size, args.size).numpy()
        predict(batch)  # warm-up
        started = time.perf_counter()
        predict(batch)
        print(f"forward: {(time.perf_counter() - started) / 8 * 1000:.1f} ms per {args.size}x{args.size} slice (batch 8)")


if __name__ == "__main__":
    main()
