"""Our BM3D (torch) against the ``bm3d`` package: PSNR and time on the same noisy inputs and sigma.

    python benchmarks/bm3d_speed.py [--threads 2] [--device cpu|cuda] [--repeats 2] [--batch 1]

Inputs: two real photos shipped with scikit-image (camera and astronaut, 256 x 256 grey crops)
and the tissue band of a full-width OCT B-scan (a SPEC-like phantom, 500 x 1800, rows the ROIs
read) made clean two ways: Gaussian-smoothed, and denoised by the package itself (a clean image
that favours the package). White Gaussian noise of sigma 10 and 20 (of 255) is added with a fixed
seed; each method sees the same noisy image and the true sigma. Times are the best of
``--repeats`` runs. ``--batch N`` (GPU) denoises N copies of each image in one call and reports
the time per image. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def _psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(estimate, dtype=np.float64) - clean) ** 2)))


def _best_time(run, repeats: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def clean_images() -> dict[str, np.ndarray]:
    import bm3d
    from scipy import ndimage
    from skimage import data

    from medimg.oct_glands.phantom import SPEC_FAMILY, make_phantom

    phantom = make_phantom((32, 500, 1800), seed=401, family=SPEC_FAMILY)
    bscan = phantom.volume[16].astype(np.float32) / 255.0
    top = max(0, int(phantom.surface[16].min()) - 16)
    bottom = min(bscan.shape[0], int(phantom.surface[16].max()) + 96)
    band = bscan[top:bottom]
    return {
        "camera 256x256": data.camera()[128:384, 128:384].astype(np.float32) / 255.0,
        "astronaut 256x256": data.astronaut()[:256, 200:456, 1].astype(np.float32) / 255.0,
        f"OCT band {band.shape[0]}x{band.shape[1]}, smoothed": ndimage.gaussian_filter(band, 1.5).astype(np.float32),
        f"OCT band {band.shape[0]}x{band.shape[1]}, package-denoised": bm3d.bm3d(band.astype(np.float64), sigma_psd=8 / 255).astype(np.float32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--sigmas", default="10,20")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import bm3d
    import torch

    from medimg.common.bm3d_torch import bm3d_torch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def ours(noisy: np.ndarray, sigma: float) -> np.ndarray:
        stack = torch.from_numpy(np.repeat(noisy[None], args.batch, axis=0)).to(device)
        result = bm3d_torch(stack, sigma, device=device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return result[0].cpu().numpy()

    print(f"threads {args.threads}, device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print("| image | sigma | PSNR noisy | PSNR package | PSNR ours | ours - package (dB) | package s | ours s/image | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    total_package = total_ours = 0.0
    for name, clean in clean_images().items():
        for sigma_levels in (float(s) for s in args.sigmas.split(",")):
            sigma = sigma_levels / 255.0
            noisy = (clean + np.random.default_rng(int(sigma_levels)).normal(0, sigma, clean.shape)).astype(np.float32)
            package_s, reference = _best_time(lambda: bm3d.bm3d(noisy.astype(np.float64), sigma_psd=sigma), args.repeats)
            ours(noisy, sigma)  # warm-up (CUDA kernels, allocator)
            ours_s, estimate = _best_time(lambda: ours(noisy, sigma), args.repeats)
            ours_s /= args.batch
            total_package += package_s
            total_ours += ours_s
            delta = _psnr(estimate, clean) - _psnr(reference, clean)
            print(f"| {name} | {sigma_levels:g} | {_psnr(noisy, clean):.2f} | {_psnr(reference, clean):.2f} | {_psnr(estimate, clean):.2f} "
                  f"| {delta:+.2f} | {package_s:.2f} | {ours_s:.3f} | {package_s / ours_s:.1f}x |")
    print(f"\nall images: package {total_package:.1f} s, ours {total_ours:.2f} s per image: {total_package / total_ours:.1f}x")


if __name__ == "__main__":
    main()
