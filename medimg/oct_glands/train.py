"""Training the gland networks on volumes with gland masks (paper section 1.2.3).

A data folder holds pairs ``NAME.tif`` (the OCT volume, as it will be fed to the network: run
``medimg oct denoise`` first or pass ``denoise=True``) and ``NAME_glands.tif`` (mask or label
volume, nonzero = gland), as ``medimg oct synth`` writes them. Training samples are the paper's
surface-anchored 80^3 ROIs at stride 20, augmented by the 8 rotations/flips that keep depth
pointing down (90-degree turns and mirrors in the en-face Y-X plane). Because the network is fully
convolutional, ``crop`` < 80 trains on random sub-cubes of the ROIs (half of them centred on a
gland voxel), which is what makes CPU training affordable. The network returns logits; the loss
is the Dice loss of their sigmoid (:func:`medimg.oct_glands.losses.dice_loss_from_logits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import InputError, expected
from medimg.common.sampling import EpochSeededDataset
from medimg.common.training import TrainingResult, TrainingSettings, fit
from medimg.common.volumes import read_volume, write_volume
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
        corners = roi_corners(detect_surface(volume), volume.shape, size=BLOCK_SIZE, stride=stride)
        cases.append(TrainingCase(volume_path.stem, np.ascontiguousarray(volume), glands, corners))
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


def sample_block(cases: list[TrainingCase], rng: np.random.Generator, *, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """A random (augmented) ``crop``^3 training sample: ``(crop, crop, crop)`` uint8 and bool."""
    weights = np.array([len(case.corners) for case in cases], dtype=np.float64)
    case = cases[int(rng.choice(len(cases), p=weights / weights.sum()))]
    y0, z0, x0 = case.corners[int(rng.integers(len(case.corners)))]
    offset = rng.integers(0, BLOCK_SIZE - crop + 1, size=3)
    if crop < BLOCK_SIZE and rng.random() < 0.5:
        roi_mask = case.glands[y0 : y0 + BLOCK_SIZE, z0 : z0 + BLOCK_SIZE, x0 : x0 + BLOCK_SIZE]
        inside = np.flatnonzero(roi_mask)
        if inside.size:
            centre = np.array(np.unravel_index(int(rng.choice(inside)), roi_mask.shape))
            offset = np.clip(centre - crop // 2, 0, BLOCK_SIZE - crop)
    y, z, x = np.array([y0, z0, x0]) + offset
    window = (slice(y, y + crop), slice(z, z + crop), slice(x, x + crop))
    return augment(case.volume[window], case.glands[window], rng)


class BlockSamples(EpochSeededDataset):
    """An epoch of random augmented training blocks (:func:`sample_block`), one per index.

    Items are ``(volume, glands)``: ``(1, crop, crop, crop)`` uint8 and bool ndarrays (scaled to
    [0, 1] on the device, where a uint8 batch is a quarter of the bytes to move).
    """

    def __init__(self, cases: list[TrainingCase], *, crop: int, length: int, seed: int) -> None:
        super().__init__(length, seed=seed)
        self.cases, self.crop = cases, crop

    def draw(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        volume, glands = sample_block(self.cases, rng, crop=self.crop)
        return volume[None], glands[None]


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
    num_workers: int = 0,
) -> TrainingResult:
    """Train ``model`` with Adam and the Dice loss; weights, checkpoint and log go to ``run_dir``.

    Each epoch holds ``steps_per_epoch * batch_size`` blocks, drawn by ``num_workers`` DataLoader
    workers (0: in this process). The weights carry the model header of
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
    settings = TrainingSettings(
        epochs=epochs, steps_per_epoch=steps_per_epoch, learning_rate=learning_rate, lr_step_epochs=lr_step_epochs, lr_gamma=0.1, seed=seed
    )
    run_dir = Path(run_dir)
    cases = load_cases(data_dir, denoise=denoise, cache_dir=run_dir / "cache")
    blocks = BlockSamples(cases, crop=crop, length=settings.samples_per_epoch(batch_size), seed=seed)
    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    network = build_model(model).to(memory_format=torch.channels_last_3d)
    arch = arch_of("oct", model)

    from medimg.oct_glands.models import INPUT_PREPROCESSING

    divisor = float(INPUT_PREPROCESSING["divisor"])  # the scaling network_input applies at inference, recorded in the weights

    def loss_fn(net, batch):
        volumes, glands = batch  # uint8 on the device: a quarter of the transfer of float32
        volumes = volumes.float().div_(divisor).contiguous(memory_format=torch.channels_last_3d)
        return dice_loss_from_logits(net(volumes), glands)

    run_entries = {"data_dir": str(data_dir), "crop": str(crop), "batch_size": str(batch_size), "denoise": str(denoise)}
    return fit(
        network, dataset=blocks, batch_size=batch_size, num_workers=num_workers, loss_fn=loss_fn, settings=settings, run_dir=run_dir,
        arch=arch, device=torch_device, resume=resume, metadata={**weights_metadata(arch, network), **run_entries},
    )
