"""Training the gland networks on volumes with gland masks (paper section 1.2.3).

A data folder holds pairs ``NAME.tif`` (the OCT volume, as it will be fed to the network: run
``medimg oct denoise`` first or pass ``denoise=True``) and ``NAME_glands.tif`` (mask or label
volume, nonzero = gland), as ``medimg oct synth`` writes them. Training samples are the paper's
surface-anchored 80^3 ROIs at stride 20, augmented by the 8 rotations/flips that keep depth
pointing down (90-degree turns and mirrors in the en-face Y-X plane), optionally by a depth
stretch (``axial_scale``: :func:`sample_block`), and by a random display
change (gain, gamma, offset, noise: :func:`intensity_augment`) before the input is scaled by the
volume's tissue levels, as :func:`medimg.oct_glands.inference.network_input` scales it. Because the network is fully
convolutional, ``crop`` < 80 trains on random sub-cubes of the ROIs (half of them centred on a
gland voxel), which is what makes CPU training affordable. The network returns logits; the loss
is the Dice loss of their sigmoid (:func:`medimg.oct_glands.losses.dice_loss_from_logits`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import InputError, OptionValueError, expected
from medimg.common.process_group import distributable, main_rank_first
from medimg.common.sampling import EpochSeededDataset
from medimg.common.training import TrainingResult, TrainingSettings, fit
from medimg.common.volumes import read_volume, write_volume
from medimg.oct_glands.intensity import scale_to_levels, tissue_levels
from medimg.oct_glands.roi import BLOCK_SIZE, TRAINING_STRIDE, roi_corners
from medimg.oct_glands.scan import load_scan
from medimg.oct_glands.surface import detect_surface

MASK_SUFFIX = "_glands"
_DERIVED_SUFFIXES = (MASK_SUFFIX, "_denoised")


@dataclass
class TrainingCase:
    name: str
    volume: np.ndarray  # (Y, Z, X) uint8
    glands: np.ndarray  # (Y, Z, X) bool
    corners: np.ndarray  # (B, 3) ROI corners (y*, z*, x*)
    levels: tuple[float, float, float]  # tissue grey levels (low, centre, high) that scale the network input


def find_pairs(data_dir: Path) -> list[tuple[Path, Path]]:
    """``(volume, mask)`` paths in a data folder, sorted by name."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(expected("a data folder", f"'{data_dir}' which is not a folder"))
    pairs = []
    for volume_path in sorted(data_dir.glob("*.tif")):
        if volume_path.stem.endswith(_DERIVED_SUFFIXES):
            continue
        mask_path = volume_path.with_name(f"{volume_path.stem}{MASK_SUFFIX}.tif")
        if not mask_path.exists():
            raise InputError(expected(f"a mask {mask_path.name} beside {volume_path.name}", "none"))
        pairs.append((volume_path, mask_path))
    if not pairs:
        raise InputError(expected("NAME.tif + NAME_glands.tif pairs in the data folder", f"none in '{data_dir}'"))
    return pairs


def load_cases(data_dir: Path, *, stride: int = TRAINING_STRIDE, denoise: bool = False, cache_dir: Path | None = None) -> list[TrainingCase]:
    cases = []
    for volume_path, mask_path in find_pairs(data_dir):
        volume = load_scan(volume_path)
        if denoise:
            volume = _denoised(volume, volume_path, cache_dir)
        glands = np.asarray(read_volume(mask_path)) > 0
        if glands.shape != volume.shape:
            raise InputError(expected(f"a mask of shape {volume.shape}", f"{glands.shape} in '{mask_path.name}'"))
        surface = detect_surface(volume)
        corners = roi_corners(surface, volume.shape, size=BLOCK_SIZE, stride=stride)
        levels = tissue_levels(volume, surface, depth=BLOCK_SIZE)
        cases.append(TrainingCase(volume_path.stem, np.ascontiguousarray(volume), glands, corners, levels))
        console.info(f"{volume_path.name}: {len(corners)} ROIs, {glands.mean():.2%} gland voxels")
    return cases


def _denoised(volume: np.ndarray, source: Path, cache_dir: Path | None) -> np.ndarray:
    from medimg.oct_glands.denoise import denoise_volume

    cached = cache_dir / f"{source.stem}_denoised.tif" if cache_dir else None
    if cached is not None and cached.exists():
        return np.asarray(read_volume(cached))
    denoised = denoise_volume(volume, progress=lambda items: console.track(items, description=f"BM3D {source.name}"))
    if cached is not None:
        write_volume(cached, denoised)
    return denoised


def augment(volume: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 en-face rotations/mirrors, applied alike to a ``(Y, Z, X)`` block and its mask."""
    turns = int(rng.integers(4))
    mirror = bool(rng.integers(2))
    out = []
    for array in (volume, mask):
        array = np.rot90(array, k=turns, axes=(0, 2))
        out.append(np.ascontiguousarray(array[:, :, ::-1] if mirror else array))
    return out[0], out[1]


def grey_level_map(rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A random monotone display change, as another scanner or another gain setting would give.

    ``v -> round(gain * 255 (v / 255)^gamma + offset)``, clipped to 0..255: gamma 0.6-1.7,
    gain 0.15-1.5 (a low gain also coarsens the grey steps, as a dark real scan's are), offset
    -10..20. Monotone, so a volume's percentiles go through it unchanged in rank: the tissue
    levels of the mapped volume are the mapped levels.
    """
    gamma = float(np.exp(rng.uniform(np.log(0.6), np.log(1.7))))
    gain = float(np.exp(rng.uniform(np.log(0.15), np.log(1.5))))
    offset = float(rng.uniform(-10.0, 20.0))

    def apply(values: np.ndarray) -> np.ndarray:
        unit = np.asarray(values, dtype=np.float32) / np.float32(255.0)
        return np.clip(np.rint(np.float32(gain * 255.0) * np.power(unit, np.float32(gamma)) + np.float32(offset)), 0.0, 255.0)

    return apply


def intensity_augment(block: np.ndarray, levels: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """A block as the network sees it after a random display change (:func:`grey_level_map`) and,
    half the time, added Gaussian noise of up to 10 % of the tissue spread.

    Parameters
    ----------
    block : (S, S, S) ndarray of uint8
    levels : the block's volume's tissue levels

    Returns
    -------
    scaled : (S, S, S) ndarray of float32, scaled by the mapped levels (:func:`scale_to_levels`)
    """
    display = grey_level_map(rng)
    mapped_levels = tuple(float(v) for v in display(np.asarray(levels, dtype=np.float32)))
    scaled = scale_to_levels(display(block), mapped_levels)
    if rng.random() < 0.5:
        scaled += rng.normal(0.0, rng.uniform(0.0, 0.1), size=scaled.shape).astype(np.float32)
    return scaled


def resample_depth(volume: np.ndarray, mask: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """A block and its mask resampled to ``depth`` rows along Z, as a scanner of another axial
    sampling would record them (linear interpolation at pixel centres; the mask where its
    interpolated value reaches one half). Shrinking by more than 2 skips rows rather than
    averaging them; the shipped weights were trained shrinking by 1.4 at most.

    Parameters
    ----------
    volume : (Y, Z, X) ndarray of uint8
    mask : (Y, Z, X) ndarray of bool

    Returns
    -------
    volume : (Y, depth, X) ndarray of uint8
    mask : (Y, depth, X) ndarray of bool
    """
    source = volume.shape[1]
    if depth < 1:
        raise InputError(expected("a depth of at least 1 row", depth))
    if depth == source:
        return volume, mask
    position = np.clip((np.arange(depth) + 0.5) * (source / depth) - 0.5, 0.0, source - 1.0)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, source - 1)
    share = (position - below).astype(np.float32)[None, :, None]

    def interpolate(array: np.ndarray) -> np.ndarray:
        values = array.astype(np.float32)
        return values[:, below] * (1.0 - share) + values[:, above] * share

    return np.rint(interpolate(volume)).astype(np.uint8), interpolate(mask) >= 0.5


def parse_axial_scale(text: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` (or one factor) -> the (low, high) range :func:`train` takes."""
    wanted = "--axial-scale LOW,HIGH of numbers, e.g. 0.7,2"
    try:
        parts = tuple(float(part) for part in str(text).split(","))
    except ValueError:
        raise OptionValueError(expected(wanted, repr(text))) from None
    if len(parts) not in (1, 2) or not all(np.isfinite(parts)):
        raise OptionValueError(expected(wanted, repr(text)))
    return (parts[0], parts[-1])


def check_axial_scale(axial_scale: tuple[float, float], *, crop: int) -> None:
    """The stretch range must keep each block's source rows inside its 80-deep ROI and at least 4."""
    low, high = axial_scale
    lowest, highest = crop / BLOCK_SIZE, crop / 4
    if not (lowest <= low <= high <= highest):
        raise InputError(expected(
            f"an axial scale range LOW,HIGH with {lowest:g} <= LOW <= HIGH <= {highest:g} for crop {crop} "
            f"(the rows read, crop / factor, must lie in 4..{BLOCK_SIZE})", f"{low:g},{high:g}"))


def draw_axial_scale(rng: np.random.Generator, scale_range: tuple[float, float]) -> float:
    """A depth stretch factor, log-uniform in ``scale_range`` (1 = the phantom's own sampling)."""
    low, high = scale_range
    if low == high:
        return float(low)
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def sample_block(
    cases: list[TrainingCase], rng: np.random.Generator, *, crop: int, axial_scale: tuple[float, float] = (1.0, 1.0)
) -> tuple[np.ndarray, np.ndarray, TrainingCase]:
    """A random (augmented) ``crop``^3 training sample: ``(crop, crop, crop)`` uint8 and bool, and its case.

    Besides the en-face turns and mirrors (:func:`augment`), the depth axis is stretched by a
    factor drawn from ``axial_scale`` (:func:`draw_axial_scale`): ``crop / factor`` rows of the ROI
    resampled to ``crop`` (:func:`resample_depth`), as OCT systems of other axial-to-lateral
    sampling ratios record a duct: longer or shorter helix turns, taller or flatter tubes.
    """
    check_axial_scale(axial_scale, crop=crop)
    weights = np.array([len(case.corners) for case in cases], dtype=np.float64)
    case = cases[int(rng.choice(len(cases), p=weights / weights.sum()))]
    y0, z0, x0 = case.corners[int(rng.integers(len(case.corners)))]
    scale = draw_axial_scale(rng, axial_scale)
    # check_axial_scale keeps crop / scale in 4..80; the clip only absorbs rounding
    extent = np.array([crop, int(np.clip(round(crop / scale), 4, BLOCK_SIZE)), crop])
    offset = rng.integers(0, BLOCK_SIZE - extent + 1, size=3)
    if crop < BLOCK_SIZE and rng.random() < 0.5:
        roi_mask = case.glands[y0 : y0 + BLOCK_SIZE, z0 : z0 + BLOCK_SIZE, x0 : x0 + BLOCK_SIZE]
        inside = np.flatnonzero(roi_mask)
        if inside.size:
            centre = np.array(np.unravel_index(int(rng.choice(inside)), roi_mask.shape))
            offset = np.clip(centre - extent // 2, 0, BLOCK_SIZE - extent)
    y, z, x = np.array([y0, z0, x0]) + offset
    window = (slice(y, y + crop), slice(z, z + int(extent[1])), slice(x, x + crop))
    volume, glands = resample_depth(case.volume[window], case.glands[window], crop)
    return (*augment(volume, glands, rng), case)


class BlockSamples(EpochSeededDataset):
    """An epoch of random augmented training blocks (:func:`sample_block`), one per index.

    Items are ``(volume, glands)``: ``(1, crop, crop, crop)`` float32 network input (grey levels
    through :func:`intensity_augment`, scaled by the tissue levels as at inference) and bool.
    """

    def __init__(
        self, cases: list[TrainingCase], *, crop: int, length: int, seed: int, axial_scale: tuple[float, float] = (1.0, 1.0)
    ) -> None:
        super().__init__(length, seed=seed)
        self.cases, self.crop, self.axial_scale = cases, crop, axial_scale

    def draw(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        volume, glands, case = sample_block(self.cases, rng, crop=self.crop, axial_scale=self.axial_scale)
        return intensity_augment(volume, case.levels, rng)[None], glands[None]


@distributable
def train(
    data_dir: Path,
    run_dir: Path,
    *,
    model: str = "light",
    epochs: int = 20,
    steps_per_epoch: int = 50,
    batch_size: int = 2,
    crop: int = BLOCK_SIZE,
    learning_rate: float = 1e-3,
    lr_step_epochs: int = 0,
    seed: int = 0,
    denoise: bool = False,
    device: str = "auto",
    resume: bool = True,
    start_weights: Path | None = None,
    num_workers: int = 0,
    axial_scale: tuple[float, float] = (1.0, 1.0),
) -> TrainingResult:
    """Train ``model`` with Adam and the Dice loss; weights, checkpoint and log go to ``run_dir``.

    Each epoch holds ``steps_per_epoch * batch_size`` blocks, drawn by ``num_workers`` DataLoader
    workers (0: in this process). ``start_weights`` (safetensors of the same model) fine-tunes
    them instead of starting from random layers. ``axial_scale`` (low, high) stretches each
    block's depth by a log-uniform factor (:func:`sample_block`). The weights carry the model header of
    :func:`medimg.common.models.weights_metadata` (``medimg.common.models.load_model`` rebuilds them).
    """
    import torch

    from medimg.common.device import resolve_device
    from medimg.common.models import arch_of, weights_metadata
    from medimg.oct_glands.losses import dice_loss_from_logits
    from medimg.oct_glands.models import build_model

    if not (8 <= crop <= BLOCK_SIZE and crop % 4 == 0):
        raise InputError(expected(f"a crop size divisible by 4 in 8..{BLOCK_SIZE}", crop))
    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    check_axial_scale(axial_scale, crop=crop)
    settings = TrainingSettings(
        epochs=epochs, steps_per_epoch=steps_per_epoch, learning_rate=learning_rate, lr_step_epochs=lr_step_epochs, lr_gamma=0.1, seed=seed
    )
    run_dir = Path(run_dir)
    with main_rank_first():  # under torchrun, rank 0 denoises and caches; the others read its cache
        cases = load_cases(data_dir, denoise=denoise, cache_dir=run_dir / "cache")
    blocks = BlockSamples(cases, crop=crop, length=settings.samples_per_epoch(batch_size), seed=seed, axial_scale=axial_scale)
    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    network = build_model(model).to(memory_format=torch.channels_last_3d)
    arch = arch_of("oct", model)

    def loss_fn(net, batch):
        volumes, glands = batch  # already scaled by their tissue levels, as network_input scales at inference
        return dice_loss_from_logits(net(volumes.contiguous(memory_format=torch.channels_last_3d)), glands)

    run_entries = {
        "data_dir": str(data_dir), "crop": str(crop), "batch_size": str(batch_size), "denoise": str(denoise),
        "axial_scale": f"{axial_scale[0]:g},{axial_scale[1]:g}",
    }
    return fit(
        network, dataset=blocks, batch_size=batch_size, num_workers=num_workers, loss_fn=loss_fn, settings=settings, run_dir=run_dir,
        arch=arch, device=torch_device, resume=resume, start_weights=start_weights, metadata={**weights_metadata(arch, network), **run_entries},
    )
