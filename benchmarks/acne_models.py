"""Inference and training throughput of the acne networks at 224 x 224.

    python benchmarks/acne_models.py [--device auto] [--preset small] [--batch 16] [--repeats 3]

Prints, per model: parameters, size, GMACs, inference images/s (batch ``--batch``, after one warm-up
pass) and training images/s (forward + LDL loss + backward + Adam step). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _best_seconds(function, repeats: int) -> float:
    function()  # warm-up: allocator, kernel selection
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    import torch

    from medimg.acne.complexity import model_complexity
    from medimg.acne.labels import HAYASHI, cou2cls_matrix, count_distributions, count_to_grade_distribution
    from medimg.acne.losses import ldl_loss
    from medimg.acne.models import MODEL_NAMES, build_model
    from medimg.common.device import resolve_device

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.standard_normal((args.batch, 3, 224, 224), dtype=np.float32)).to(device)
    count_targets = count_distributions(rng.integers(1, 66, args.batch), sigma=3.0)
    grade_targets = count_to_grade_distribution(count_targets, HAYASHI)
    count_targets, grade_targets = (torch.from_numpy(np.asarray(t, np.float32)).to(device) for t in (count_targets, grade_targets))
    cou2cls = torch.from_numpy(cou2cls_matrix(HAYASHI)).to(device)
    print(f"device = {device}, torch threads = {torch.get_num_threads()}, batch = {args.batch}, preset = {args.preset}")
    print(f"{'model':8s} {'params':>10s} {'MB':>7s} {'GMACs':>7s} {'infer img/s':>12s} {'train img/s':>12s}")
    for name in MODEL_NAMES:
        model = build_model(name, preset=args.preset).to(device)
        figures = model_complexity(model, size=224)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

        def infer() -> None:
            with torch.inference_mode():
                model.eval()(images)
            sync()

        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def train_step() -> None:
            model.train()
            optimizer.zero_grad(set_to_none=True)
            count_logits, grade_logits = model(images)
            loss, _ = ldl_loss(count_logits, grade_logits, count_targets, grade_targets, cou2cls=cou2cls)
            loss.backward()
            optimizer.step()
            sync()

        infer_rate = args.batch / _best_seconds(infer, args.repeats)
        train_rate = args.batch / _best_seconds(train_step, args.repeats)
        print(f"{name:8s} {figures['params']:10,d} {figures['params'] * 4 / 1e6:7.2f} {figures['macs'] / 1e9:7.3f} "
              f"{infer_rate:12.1f} {train_rate:12.1f}")


if __name__ == "__main__":
    main()
