"""Denoisers behind one protocol: ``denoise(image, sigma) -> image``, float32 in and out.

A :class:`Denoiser` takes one 2-D float32 image and the standard deviation of its additive noise
(in the image's own units) and returns the estimate of the clean image, float32, same shape. Each
method registers a builder that takes its options dataclass, so a pipeline picks a method by name
(``--denoiser``) and never imports a denoising package itself:

    bm3d-reference   the ``bm3d`` package (Mäkinen, Azzari, Foi), non-commercial licence

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
    """The ``bm3d`` package's BM3D (profile "np") with ``options``."""
    import bm3d

    stage = bm3d.BM3DStages.ALL_STAGES if options.stage == "full" else bm3d.BM3DStages.HARD_THRESHOLDING

    def denoise(image: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(bm3d.bm3d(np.asarray(image, dtype=np.float64), sigma_psd=float(sigma), stage_arg=stage), dtype=np.float32)

    return denoise


@dataclass(frozen=True)
class DenoiserEntry:
    options: type
    build: Callable[[Any], Denoiser]


DENOISERS: dict[str, DenoiserEntry] = {
    "bm3d-reference": DenoiserEntry(BM3DOptions, bm3d_reference),
}
DEFAULT_DENOISER = "bm3d-reference"


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
    return checked(entry.build(entry.options(**options)))


def checked(denoiser: Denoiser) -> Denoiser:
    """``denoiser`` with the protocol's checks: a 2-D finite image, sigma > 0, float32 out."""

    def denoise(image: np.ndarray, sigma: float) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise InputError(expected("a 2-D image to denoise", f"shape {image.shape}"))
        if not (np.isfinite(sigma) and sigma > 0):
            raise InputError(expected("a noise sigma > 0", sigma))
        result = np.asarray(denoiser(image, float(sigma)), dtype=np.float32)
        if result.shape != image.shape:
            raise InputError(expected(f"a denoised image of shape {image.shape}", f"{result.shape}"))
        return result

    return denoise


def region_sigma(values: np.ndarray, region: np.ndarray, *, min_voxels: int = 1000) -> float | None:
    """Standard deviation of ``values`` inside a homogeneous ``region`` (bool mask, same shape),
    or None when the region has fewer than ``min_voxels`` voxels to measure it on."""
    sample = np.asarray(values)[np.asarray(region, dtype=bool)]
    return float(sample.std()) if sample.size >= min_voxels else None
