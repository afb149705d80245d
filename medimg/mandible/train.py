"""Training a mandible network on CT slices with masks (paper sections 1.4, 2.3, 2.4).

Data layout: see :mod:`medimg.mandible.masks` (one folder per case, a DICOM series or image
slices, with a NIfTI, PNG or Labelme mask). ``DATA_DIR`` may also be a single case folder
(``medimg mandible synth`` output trains as it is).

The recipe is the paper's: focal loss with gamma 2, Adam, batch 4, 100 epochs; with encoder
weights given (transfer learning) the encoder is frozen for the first ``freeze_epochs`` epochs and
only the decoder and head learn at ``learning_rate`` (1e-4), then everything learns at
``learning_rate * 0.1`` (1e-5). Without encoder weights nothing is frozen (freezing a random
encoder only wastes epochs) but the learning-rate step stays, so the ablation runs share one
schedule.

Samples are single slices, windowed and resized exactly as :func:`medimg.mandible.pipeline.segment`
does, drawn so that ``positive_fraction`` of them (75 %) contain mandible (most slices of a head
CT do not, and a network fed mostly empty slices learns to answer "background"), and lightly
augmented: rotation within +-10 degrees, scale 0.9..1.1, shift within 4 % of the slice,
contrast 0.9..1.1 and brightness +-3 % of the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medimg.common import console
from medimg.common.errors import FormatError, InputError, expected
from medimg.common.metrics import ConfusionCounts
from medimg.common.process_group import distributable
from medimg.common.sampling import EpochSeededDataset
from medimg.common.training import TrainingResult, TrainingSettings, fit
from medimg.mandible.evaluate import segmentation_scores
from medimg.mandible.masks import MASKS_FOLDER, find_nifti_mask, read_case_mask
from medimg.mandible.preprocess import (
    DEFAULT_WINDOW,
    resize_slices,
    to_model_input,
    to_original_grid,
)

IMAGES_FOLDER = "images"
DICOM_FOLDER = "dicom"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
POSITIVE_FRACTION = 0.75
MAX_ROTATION_DEG = 10.0
SCALE_RANGE = (0.9, 1.1)
MAX_SHIFT = 0.04  # of the slice side
CONTRAST_RANGE = (0.9, 1.1)
MAX_BRIGHTNESS = 0.03  # of the window width
MAX_VALIDATION_SLICES = 64
UNFREEZE_LR_FACTOR = 0.1


@dataclass(frozen=True)
class TrainingCase:
    """One case's slices in memory.

    ``hu`` is (Z, Y, X) int16 HU, rounded (half the memory of float32: a head CT of 300 slices
    of 512 x 512 holds 150 MB; a rounding of 0.5 HU is invisible through any window). For image
    cases the grey levels are mapped into the training window (grey g -> ``level - width / 2 +
    g / 255 * width``), so windowing gives back g / 255. ``mask`` is (Z, Y, X) bool; ``slices``
    the labelled slice indices used.
    """

    name: str
    hu: np.ndarray
    mask: np.ndarray
    slices: np.ndarray

    @property
    def positive_slices(self) -> np.ndarray:
        return self.slices[self.mask[self.slices].any(axis=(1, 2))]


def _is_case(folder: Path) -> bool:
    return (folder / IMAGES_FOLDER).is_dir() or (folder / DICOM_FOLDER).is_dir() or find_nifti_mask(folder) is not None


def find_cases(data_dir: Path | str) -> list[Path]:
    """Case folders of a data folder, sorted by name (the folder itself when it is one case)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(expected("a data folder", f"'{data_dir}' which is not a folder"))
    if _is_case(data_dir):
        return [data_dir]
    cases = sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and _is_case(p))
    if not cases:
        raise InputError(expected(
            f"case folders holding {IMAGES_FOLDER}/ or {DICOM_FOLDER}/ (or a mask.nii.gz) in the data folder", f"none in '{data_dir}'"
        ))
    return cases


def _read_grey(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                raise FormatError(expected("an 8-bit grey slice picture", f"'{path.name}' in mode {image.mode}"))
            return np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise FormatError(expected("a readable slice picture (PNG or JPEG)", f"'{path.name}' ({error})")) from None


def read_image_slices(folder: Path | str) -> tuple[np.ndarray, list[str]]:
    """Grey slice pictures of an ``images/`` folder in name order.

    Returns
    -------
    slices : (Z, H, W) ndarray of uint8
    names : file names without suffix, in the same order
    """
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(expected(f"slice pictures ({', '.join(IMAGE_SUFFIXES)}) in '{folder}'", "none"))
    slices = [_read_grey(path) for path in paths]
    if any(s.shape != slices[0].shape for s in slices):
        odd = next(p for p, s in zip(paths, slices) if s.shape != slices[0].shape)
        raise FormatError(expected(f"slices of one size {slices[0].shape} in '{folder}'", f"{_read_grey(odd).shape} in '{odd.name}'"))
    return np.stack(slices), [p.stem for p in paths]


def grey_to_hu(grey: np.ndarray, *, level: float, width: float) -> np.ndarray:
    """Undo an 8-bit window: grey (any shape, 0..255) -> HU such that ``window(hu) == grey / 255``."""
    return (np.float32(level - width / 2.0) + np.asarray(grey, dtype=np.float32) / np.float32(255.0) * np.float32(width)).astype(np.float32)


def as_int16_hu(hu: np.ndarray) -> np.ndarray:
    """(Z, Y, X) HU of any float type -> int16, rounded and clipped to the int16 range."""
    return np.clip(np.rint(hu), -32768, 32767).astype(np.int16)


def dicom_slice_name(path: Path | str) -> str:
    """The name a DICOM slice's mask file carries: the file name without a ``.dcm`` suffix
    (UID-like names such as ``1.2.840.5`` are kept whole)."""
    path = Path(path)
    return path.stem if path.suffix.lower() == ".dcm" else path.name


def load_case(case_dir: Path | str, *, level: float, width: float) -> TrainingCase:
    """Read one case folder (see :mod:`medimg.mandible.masks` for the layout)."""
    case_dir = Path(case_dir)
    if (case_dir / IMAGES_FOLDER).is_dir():
        grey, names = read_image_slices(case_dir / IMAGES_FOLDER)
        hu = grey_to_hu(grey, level=level, width=width)
        mask, labelled = read_case_mask(case_dir, shape=hu.shape, slice_names=names)
    else:
        from medimg.common.dicom_series import read_ct_series

        # masks are matched to the source slices by name: a resampled grid would not line up with them
        series = read_ct_series(case_dir / DICOM_FOLDER if (case_dir / DICOM_FOLDER).is_dir() else case_dir, resample=False)
        hu = series.volume
        names = [dicom_slice_name(path) for path in series.files]
        mask, labelled = read_case_mask(case_dir, shape=hu.shape, slice_names=names, affine_ras=series.affine_ras)
    slices = np.flatnonzero(labelled)
    if not len(slices):
        raise InputError(expected(f"at least one labelled slice in case '{case_dir.name}'", f"no mask file in {case_dir / MASKS_FOLDER}"))
    case = TrainingCase(case_dir.name, as_int16_hu(hu), mask, slices)
    console.info(f"{case.name}: {len(slices)} labelled slices of {hu.shape[0]}, {len(case.positive_slices)} with mandible, "
                 f"{hu.shape[1]}x{hu.shape[2]} pixels")
    return case


def split_cases(
    cases: list[TrainingCase], *, validation_fraction: float, validation_cases=None, seed: int = 0
) -> tuple[list[TrainingCase], list[TrainingCase]]:
    """Training and validation cases.

    Named ``validation_cases`` win; otherwise ``round(fraction * n)`` cases (at least one, never
    all) picked with ``seed``. With a single case, every ``round(1 / fraction)``-th labelled slice
    is held out instead (neighbouring slices look alike, so that score is optimistic).
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise InputError(expected("a validation fraction in [0, 1)", validation_fraction))
    if validation_cases:
        names = {case.name for case in cases}
        unknown = sorted(set(validation_cases) - names)
        if unknown:
            raise InputError(expected(f"validation cases among {', '.join(sorted(names))}", ", ".join(unknown)))
        held = [case for case in cases if case.name in set(validation_cases)]
        kept = [case for case in cases if case.name not in set(validation_cases)]
        if not kept:
            raise InputError(expected("at least one case left for training", "every case held out for validation"))
        return kept, held
    if validation_fraction == 0.0:
        return list(cases), []
    if len(cases) == 1:
        case = cases[0]
        step = max(2, round(1.0 / validation_fraction))
        held_slices, kept_slices = case.slices[::step], np.setdiff1d(case.slices, case.slices[::step])
        if not len(kept_slices):
            return list(cases), []
        console.info(f"one case: every {step}th labelled slice ({len(held_slices)}) held out for validation")
        return [replace(case, slices=kept_slices)], [replace(case, slices=held_slices)]
    count = min(len(cases) - 1, max(1, round(validation_fraction * len(cases))))
    order = np.random.default_rng(seed).permutation(len(cases))
    held_set = set(order[:count].tolist())
    return [c for i, c in enumerate(cases) if i not in held_set], [c for i, c in enumerate(cases) if i in held_set]


def augment_slice(
    hu: np.ndarray, mask: np.ndarray, rng: np.random.Generator, *, level: float, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """A random similarity transform and contrast/brightness change of one slice and its mask.

    Parameters
    ----------
    hu : (Y, X) ndarray of float32 (HU)
    mask : (Y, X) ndarray of bool

    Returns
    -------
    hu : (Y, X) float32, mask : (Y, X) bool
        Pixels brought in from outside the slice are below the window (black) and background.
    """
    from scipy import ndimage

    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    scale = rng.uniform(*SCALE_RANGE)
    shape = np.array(hu.shape, dtype=np.float64)
    shift = rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * shape
    contrast = rng.uniform(*CONTRAST_RANGE)
    brightness = rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS) * width
    # Output pixel p samples input at centre + R(angle) (p - centre - shift) / scale.
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / scale
    centre = (shape - 1) / 2.0
    offset = centre - rotation @ (centre + shift)
    below_window = float(level - width / 2.0 - 1.0)
    moved = ndimage.affine_transform(hu, rotation, offset=offset, order=1, mode="constant", cval=below_window)
    moved_mask = ndimage.affine_transform(mask.astype(np.float32), rotation, offset=offset, order=1, mode="constant", cval=0.0) >= 0.5
    moved = (np.float32(level) + (moved - np.float32(level)) * np.float32(contrast) + np.float32(brightness)).astype(np.float32)
    return moved, moved_mask


def slice_sample(
    hu: np.ndarray, mask: np.ndarray, *, size: int, level: float, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """One slice as the network sees it, and its mask on the network's grid.

    Returns
    -------
    image : (3, size, size) float32 (see :func:`medimg.mandible.preprocess.to_model_input`)
    target : (size, size) float32, 1 = mandible
    """
    image = to_model_input(hu[None], size=size, level=level, width=width)[0]
    target = to_original_grid(mask[None].astype(np.float32), shape=(size, size))[0] >= 0.5
    return image, target.astype(np.float32)


class SliceSamples(EpochSeededDataset):
    """An epoch of augmented training slices, ``positive_fraction`` of them with mandible.

    Items are ``(image, target)``: ``(3, size, size)`` float32 (as
    :func:`medimg.mandible.preprocess.to_model_input` makes it) and ``(1, size, size)`` float32,
    1 = mandible.
    """

    def __init__(self, cases: list[TrainingCase], *, size: int, level: float, width: float, length: int, seed: int,
                 positive_fraction: float = POSITIVE_FRACTION, augment: bool = True) -> None:
        super().__init__(length, seed=seed)
        self.cases, self.size, self.level, self.width, self.augment = cases, size, level, width, augment
        self.every = labelled_slices(cases)
        self.positive = np.array([(c, int(k)) for c, case in enumerate(cases) for k in case.positive_slices], dtype=np.int64).reshape(-1, 2)
        self.positive_fraction = positive_fraction if len(self.positive) else 0.0
        if not len(self.every):
            raise InputError(expected("at least one labelled training slice", "none"))

    def draw(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pool = self.positive if rng.random() < self.positive_fraction else self.every
        c, k = pool[int(rng.integers(len(pool)))]
        case = self.cases[int(c)]
        hu, mask = case.hu[k].astype(np.float32), case.mask[k]
        if self.augment:
            hu, mask = augment_slice(hu, mask, rng, level=self.level, width=self.width)
        image, target = slice_sample(hu, mask, size=self.size, level=self.level, width=self.width)
        return image, target[None]


def labelled_slices(cases: list[TrainingCase]) -> np.ndarray:
    """``(case index, slice index)`` of every labelled slice: ``(N, 2)`` int64."""
    return np.array([(c, int(k)) for c, case in enumerate(cases) for k in case.slices], dtype=np.int64).reshape(-1, 2)


def validation_counts(network, cases: list[TrainingCase], *, size: int, level: float, width: float, output: dict, batch_size: int = 8,
                      max_slices: int = MAX_VALIDATION_SLICES) -> ConfusionCounts:
    """Pixel counts of the thresholded (0.5) prediction on up to ``max_slices`` held-out slices
    (evenly spread), scored on each slice's own grid as ``segment`` would.

    ``output`` is the network's registered ``output`` entry (a sigmoid over one mandible channel),
    applied to the logits as :func:`medimg.common.activation.activate` does at inference.
    """
    from medimg.common.activation import activate
    from medimg.common.predictor import network_predictor

    pairs = [(case, int(k)) for case in cases for k in case.slices]
    if len(pairs) > max_slices:
        pairs = [pairs[int(i)] for i in np.linspace(0, len(pairs) - 1, max_slices).round().astype(int)]
    device = next(network.parameters()).device
    predict = network_predictor(network, device, batch_size=batch_size)
    was_training = network.training
    total = ConfusionCounts(0, 0, 0, 0)
    for case in cases:
        indices = [k for owner, k in pairs if owner is case]
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            inputs = to_model_input(case.hu[chunk].astype(np.float32), size=size, level=level, width=width)
            # as predict_volume does: logits back to the slice's grid, then the activation
            logits = resize_slices(predict(inputs)[:, 0], case.hu.shape[1:])
            probabilities = activate(logits[:, None], output, in_place=True)[:, 0]
            total = total + ConfusionCounts.from_masks(probabilities >= 0.5, case.mask[chunk])
    network.train(was_training)
    return total


@distributable
def train(
    data_dir: Path | str,
    run_dir: Path | str,
    *,
    arch: str = "res-cbam-unet",
    width: float = 0.125,
    cbam_reduction: int = 16,
    cbam_kernel: int = 7,
    input_size: int = 256,
    epochs: int = 100,
    freeze_epochs: int = 25,
    batch_size: int = 4,
    learning_rate: float = 1e-4,
    encoder_weights: Path | str | None = None,
    focal_gamma: float = 2.0,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    device: str = "auto",
    resume: bool = True,
    validation_fraction: float = 0.2,
    validation_cases=None,
    positive_fraction: float = POSITIVE_FRACTION,
    level: float = DEFAULT_WINDOW[0],
    window_width: float = DEFAULT_WINDOW[1],
    num_workers: int = 0,
) -> TrainingResult:
    """Train one of the paper's networks; weights, checkpoint and log go to ``run_dir`` (resumable).

    ``steps_per_epoch`` defaults to one pass over the training slices (``ceil(slices / batch)``);
    slices are drawn (:class:`SliceSamples`) by ``num_workers`` DataLoader workers (0: in this
    process). The weights carry the model header of :func:`medimg.common.models.weights_metadata`:
    ``config`` and ``preprocessing`` with the ``input_size``, ``window_level`` and ``window_width``
    trained with, so :func:`medimg.common.models.load_model` rebuilds the network and its inputs.
    """
    import torch

    from medimg.common.device import resolve_device
    from medimg.common.models import arch_of, network_spec, weights_metadata
    from medimg.mandible.encoder_weights import freeze_encoder, load_encoder_weights
    from medimg.mandible.losses import focal_loss
    from medimg.mandible.models import build_model

    if input_size < 32 or input_size % 32:
        raise InputError(expected("an input size that is a multiple of 32 (e.g. 256, or 512 as in the paper)", input_size))
    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    if freeze_epochs < 0:
        raise InputError(expected("freeze epochs >= 0", freeze_epochs))
    if not 0.0 <= positive_fraction <= 1.0:
        raise InputError(expected("a positive-slice fraction in [0, 1]", positive_fraction))
    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    # Built first so that a bad arch, width or CBAM option fails before the data is read.
    network = build_model(arch, width=width, cbam_reduction=cbam_reduction, cbam_kernel=cbam_kernel)
    full_arch = arch_of("mandible", arch)
    output = network_spec(full_arch).output
    run_dir = Path(run_dir)

    cases = [load_case(path, level=level, width=window_width) for path in find_cases(data_dir)]
    training_cases, validation = split_cases(cases, validation_fraction=validation_fraction, validation_cases=validation_cases, seed=seed)
    slice_count = len(labelled_slices(training_cases))
    if steps_per_epoch is None:
        steps_per_epoch = max(1, math.ceil(slice_count / batch_size))
    console.info(f"{slice_count} training slices in {len(training_cases)} case(s), "
                 f"validation: {', '.join(c.name for c in validation) or 'none'}; {steps_per_epoch} steps per epoch")

    transfer = encoder_weights is not None
    if transfer:
        for note in load_encoder_weights(network, encoder_weights):
            console.info(note)
    frozen_epochs = freeze_epochs if transfer else 0
    if not transfer and freeze_epochs:
        console.info("no --encoder-weights: the encoder trains from the first epoch (nothing to keep frozen)")

    # One step only: the paper's 1e-4 while frozen, 1e-5 from unfreezing on (not a step every N epochs).
    settings = TrainingSettings(
        epochs=epochs, steps_per_epoch=steps_per_epoch, learning_rate=learning_rate, lr_step_epochs=freeze_epochs,
        lr_gamma=UNFREEZE_LR_FACTOR, lr_max_steps=1, seed=seed,
    )
    samples = SliceSamples(training_cases, size=input_size, level=level, width=window_width, positive_fraction=positive_fraction,
                           length=settings.samples_per_epoch(batch_size), seed=seed)

    def loss_fn(net, batch):
        images, targets = batch
        return focal_loss(net(images), targets, gamma=focal_gamma)

    def before_epoch(epoch: int, net, optimizer) -> None:
        frozen = epoch < frozen_epochs
        if frozen != bool(getattr(net, "encoder_frozen", False)):
            console.info(f"epoch {epoch + 1}: encoder {'frozen' if frozen else 'unfrozen'}, lr {optimizer.param_groups[0]['lr']:g}")
        freeze_encoder(net, frozen)

    def validate(net) -> dict[str, float]:
        counts = validation_counts(net, validation, size=input_size, level=level, width=window_width, output=output)
        scores = segmentation_scores(counts)
        return {"val_dice": scores["Dice"], "val_miou": scores["MIoU"]}

    preprocessing = {"input_size": input_size, "window_level": level, "window_width": window_width}
    run_entries = {
        "focal_gamma": str(focal_gamma),
        "batch_size": str(batch_size),
        "freeze_epochs": str(frozen_epochs),
        "encoder_weights": str(encoder_weights) if transfer else "",
        "positive_fraction": str(positive_fraction),
        "data_dir": str(data_dir),
        "training_cases": ",".join(c.name for c in training_cases),
        "validation_cases": ",".join(c.name for c in validation),
    }
    return fit(
        network, dataset=samples, batch_size=batch_size, num_workers=num_workers, loss_fn=loss_fn, settings=settings, run_dir=run_dir,
        arch=full_arch, device=torch_device, validate=validate if validation else None, before_epoch=before_epoch, resume=resume,
        metadata={**weights_metadata(full_arch, network, preprocessing=preprocessing), **run_entries},
    )
