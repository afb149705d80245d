"""Denoisers behind one protocol: ``denoise(image, sigma) -> image``, float32 in and out.

A :class:`Denoiser` takes one 2-D float32 image and the standard deviation of its additive noise
(in the image's own units) and returns the estimate of the clean image, float32, same shape. Each
method registers a builder that takes its options dataclass, so a pipeline picks a method by name
(``--denoiser``) and never imports a denoising package itself:

    bm3d             our BM3D in torch (:mod:`medimg.common.bm3d_torch`), CPU or CUDA, batched
    bm3d-reference   the ``bm3d`` package (Mäkinen, Azzari, Foi), non-commercial licence

A denoiser may also take a stack of equal-sized images, ``(B, H, W)``, at once (its entry says
``batched``); :func:`denoise_stack` feeds any denoiser such stacks.

Noise estimation is not a denoiser's business: the caller measures sigma where its images allow
(OCT: the air above the skin, see :mod:`medimg.oct_glands.noise`) and passes it in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import numpy as np

from medimg.common.errors import InputError, OptionValueError, expected

BM3D_STAGES = ("full", "hard")


class Denoiser(Protocol):
    def __call__(self, image: np.ndarray, sigma: float) -> np.ndarray:
        """image : (H, W) ndarray of float32 ; sigma > 0 in the image's units -> (H, W) float32"""
        ...


@dataclass(frozen=True)
class BM3DOptions:
    stage: str = "full"  # "full": hard thresholding + Wiener; "hard": hard thresholding only (~2x faster)

    def __post_init__(self) -> None:
        if self.stage not in BM3D_STAGES:
            raise OptionValueError(expected(f"a BM3D stage among {', '.join(BM3D_STAGES)}", repr(self.stage)))


def bm3d_reference(options: BM3DOptions) -> Denoiser:
    """The ``bm3d`` package's BM3D (profile "np") with ``options``; the package is optional
    (``pip install 'medimg[reference]'``: free for non-commercial use only)."""
    try:
        import bm3d
    except ImportError:
        raise OptionValueError(
            expected("the bm3d package for --denoiser bm3d-reference (pip install 'medimg[reference]')", "none installed")
        ) from None

    stage = bm3d.BM3DStages.ALL_STAGES if options.stage == "full" else bm3d.BM3DStages.HARD_THRESHOLDING

    def denoise(image: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(bm3d.bm3d(np.asarray(image, dtype=np.float64), sigma_psd=float(sigma), stage_arg=stage), dtype=np.float32)

    return denoise


@dataclass(frozen=True)
class TorchBM3DOptions:
    stage: str = "full"
    device: str = "auto"  # auto (CUDA when available), cpu, cuda, cuda:N
    batch_size: int = 0  # images per call; 0 = 1 on the CPU (no gain there), 8 on a GPU

    def __post_init__(self) -> None:
        from medimg.common.device import check_device_name

        if self.stage not in BM3D_STAGES:
            raise OptionValueError(expected(f"a BM3D stage among {', '.join(BM3D_STAGES)}", repr(self.stage)))
        check_device_name(self.device)
        if self.batch_size < 0:
            raise OptionValueError(expected("a batch size >= 0", self.batch_size))


def bm3d_in_torch(options: TorchBM3DOptions) -> Denoiser:
    """:func:`medimg.common.bm3d_torch.bm3d_torch` on ``options.device``; takes (H, W) or (B, H, W)."""
    from medimg.common.bm3d_torch import bm3d_torch
    from medimg.common.device import resolve_device

    device = resolve_device(options.device, announce=False)

    def denoise(image: np.ndarray, sigma: float) -> np.ndarray:
        return bm3d_torch(image, sigma, stage=options.stage, device=device)

    denoise.batch_size = options.batch_size or (8 if device.type == "cuda" else 1)  # type: ignore[attr-defined]
    return denoise


@dataclass(frozen=True)
class DenoiserEntry:
    options: type
    build: Callable[[Any], Denoiser]
    batched: bool = False  # the denoiser also takes (B, H, W) stacks


DENOISERS: dict[str, DenoiserEntry] = {
    "bm3d": DenoiserEntry(TorchBM3DOptions, bm3d_in_torch, batched=True),
    "bm3d-reference": DenoiserEntry(BM3DOptions, bm3d_reference),
}
DEFAULT_DENOISER = "bm3d"  # ours: within 0.2 dB of the package, 6-14x faster on 2 cores (benchmarks/bm3d_speed.py)


def denoiser_options(name: str, **candidates: Any) -> Any:
    """The options dataclass of denoiser ``name`` from those ``candidates`` it declares (a command
    offers every method's options; each method takes its own). Unknown names are refused."""
    if name not in DENOISERS:
        raise OptionValueError(expected(f"a denoiser among {', '.join(DENOISERS)}", repr(name)))
    options_type = DENOISERS[name].options
    return options_type(**{f.name: candidates[f.name] for f in fields(options_type) if f.name in candidates})


def build_denoiser(name: str = DEFAULT_DENOISER, **options: Any) -> Denoiser:
    """A registered denoiser with its options (unknown names and options are refused by name)."""
    if name not in DENOISERS:
        raise OptionValueError(expected(f"a denoiser among {', '.join(DENOISERS)}", repr(name)))
    entry = DENOISERS[name]
    known = {f.name for f in fields(entry.options)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise OptionValueError(expected(f"{name} options among {', '.join(sorted(known)) or '(none)'}", ", ".join(unknown)))
    return checked(entry.build(entry.options(**options)), batched=entry.batched)


def checked(denoiser: Denoiser, *, batched: bool = False) -> Denoiser:
    """``denoiser`` with the protocol's checks: a 2-D image (or a (B, H, W) stack when ``batched``),
    sigma > 0, float32 out. A batched denoiser keeps its ``batch_size``; others get 1."""
    dims = (2, 3) if batched else (2,)

    def denoise(image: np.ndarray, sigma: float) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        if image.ndim not in dims:
            raise InputError(expected("a 2-D image to denoise" + (" or a stack of them" if batched else ""), f"shape {image.shape}"))
        if not (np.isfinite(sigma) and sigma > 0):
            raise InputError(expected("a noise sigma > 0", sigma))
        result = np.asarray(denoiser(image, float(sigma)), dtype=np.float32)
        if result.shape != image.shape:
            raise InputError(expected(f"a denoised image of shape {image.shape}", f"{result.shape}"))
        return result

    denoise.batch_size = getattr(denoiser, "batch_size", 1) if batched else 1  # type: ignore[attr-defined]
    return denoise


def denoise_stack(denoiser: Denoiser, images: np.ndarray, sigma: float) -> np.ndarray:
    """Denoise a (B, H, W) stack of equal-sized images: at once by a batched denoiser, else one by one."""
    if getattr(denoiser, "batch_size", 1) > 1:
        return denoiser(images, sigma)
    return np.stack([denoiser(image, sigma) for image in images])


def region_sigma(values: np.ndarray, region: np.ndarray, *, min_voxels: int = 1000) -> float | None:
    """Standard deviation of ``values`` inside a homogeneous ``region`` (bool mask, same shape),
    or None when the region has fewer than ``min_voxels`` voxels to measure it on."""
    sample = np.asarray(values)[np.asarray(region, dtype=bool)]
    return float(sample.std()) if sample.size >= min_voxels else None
