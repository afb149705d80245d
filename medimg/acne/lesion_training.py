"""Training the lesion network (:mod:`medimg.acne.lesionnet`) on real ACNE04 photos and boxes.

Data: an ACNE04 folder (``JPEGImages/``, ``NNEW_trainval_<k>.txt`` / ``NNEW_test_<k>.txt``) with a
``boxes.csv`` (``filename, class, xmin, ymin, xmax, ymax`` in photo pixels, one row per lesion).
Every photo is decoded once and resized (bilinear, stretched, as at inference) to ``input_size``.

Each sample is drawn by a pure function of ``(seed, epoch, index)``
(:class:`medimg.common.sampling.EpochSeededDataset`):

* a random crop of 80-100 % of each side (lesions whose centre leaves the crop are dropped),
  resized back to ``input_size``; a horizontal flip half of the time;
* colour jitter: brightness and contrast x0.7-1.3, saturation x0.6-1.4, per-channel gain
  x0.9-1.1 (clinic lights differ);
* targets: the CenterNet heat-map and sizes of the kept boxes (:func:`medimg.acne.lesions.centre_heatmap`),
  the LDL count distribution of the kept count (sigma 3) and a grade distribution centred on the
  split file's grade (or on the kept count's Hayashi grade when the crop dropped a lesion).

Loss: CenterNet's focal loss on the heat-map (per lesion), 0.1 x L1 on log sizes at centres,
0.5 x (count + grade) soft-label cross-entropy for the LDL heads.

Validation (after each epoch, on ``NNEW_test_<fold>.txt``; off with ``validate=False``) reports,
for the detector at each threshold of :data:`THRESHOLDS`, the count MAE and the grade accuracy of
the Hayashi grade of the detected count, and for the LDL heads the count MAE (argmax) and grade
accuracy. It is logged only: the weights are the last epoch's whatever it says. A cross-validation
turns it off (``scripts/acne_lesion_cv.py``): about 10 s of each 2-minute epoch on 2 CPU cores, and
the test photos stay unseen until the evaluation.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medimg.acne.dataset import SplitEntry, image_path, load_split, split_file_path
from medimg.acne.labels import (
    HAYASHI,
    N_COUNT_BINS,
    N_GRADES,
    check_answer_rules,
    count_to_bin,
    gen_label_distribution,
    grades_of_counts,
)
from medimg.acne.lesions import centre_heatmap, detect_lesions
from medimg.acne.train import LoadedSplit
from medimg.acne.transforms import ACNE04_MEAN, ACNE04_STD
from medimg.common import console
from medimg.common.errors import InputError, expected
from medimg.common.images import read_image
from medimg.common.process_group import distributable
from medimg.common.sampling import EpochSeededDataset

if TYPE_CHECKING:
    import torch

# The shipped recipe (medimg/weights/acne_lesion.md): the defaults of train_lesion and of `acne train --model lesion`.
INPUT_SIZE = 320
EPOCHS = 18
LR_STEP_EPOCHS = 14
STRIDE = 4
THRESHOLDS = (0.2, 0.3, 0.4, 0.5)
DEFAULT_THRESHOLD = 0.3
COUNT_SIGMA = 3.0
GRADE_SIGMA = 0.5
BOXES_NAME = "boxes.csv"


@dataclass
class LesionSplit(LoadedSplit):
    """Photos of one split with their lesion boxes, resized to ``input_size``.

    ``images``: (N, S, S, 3) uint8; ``boxes``: N arrays (K_i, 4) float32 in input pixels;
    ``counts`` and ``grades`` (from :class:`~medimg.acne.train.LoadedSplit`): (N,) int, the split
    file's columns.
    """

    boxes: list[np.ndarray]


def read_boxes(path: Path | str) -> dict[str, np.ndarray]:
    """``boxes.csv`` -> filename -> (K, 4) float32 ``xmin, ymin, xmax, ymax`` (photo pixels)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(expected(f"a lesion box table '{path.name}' (filename, class, xmin, ymin, xmax, ymax)", f"no file '{path}'"))
    rows: dict[str, list[list[float]]] = {}
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"filename", "xmin", "ymin", "xmax", "ymax"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(expected("columns filename, xmin, ymin, xmax, ymax", f"'{path}' without {', '.join(sorted(missing))}"))
        for line, row in enumerate(reader, start=2):
            try:
                rows.setdefault(row["filename"], []).append([float(row[key]) for key in ("xmin", "ymin", "xmax", "ymax")])
            except (TypeError, ValueError):
                raise InputError(expected("numeric box coordinates", f"line {line} of '{path}'")) from None
    return {name: np.asarray(boxes, dtype=np.float32) for name, boxes in rows.items()}


def load_lesion_split(data_dir: Path | str, entries: Sequence[SplitEntry], boxes: dict[str, np.ndarray], *,
                      size: int = INPUT_SIZE) -> LesionSplit:
    """Decode and resize every photo of ``entries``; scale its boxes to the resized photo."""
    from PIL import Image

    images = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    scaled = []
    for i, entry in enumerate(console.track(list(entries), description="load photos")):
        photo = read_image(image_path(data_dir, entry))
        height, width = photo.shape[:2]
        images[i] = np.asarray(Image.fromarray(photo).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)
        photo_boxes = boxes.get(entry.filename, np.zeros((0, 4), np.float32)).copy()
        photo_boxes[:, [0, 2]] *= size / width
        photo_boxes[:, [1, 3]] *= size / height
        scaled.append(photo_boxes)
    return LesionSplit(list(entries), images, scaled)


def normalise(image: np.ndarray) -> np.ndarray:
    """``(S, S, 3)`` uint8 or float in 0..255 -> ``(3, S, S)`` float32 standardised with ACNE04's statistics."""
    scaled = np.asarray(image, dtype=np.float32) / 255.0
    return ((scaled - np.asarray(ACNE04_MEAN, np.float32)) / np.asarray(ACNE04_STD, np.float32)).transpose(2, 0, 1).copy()


def augment(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """Random crop, flip and colour jitter of one photo (module docstring).

    Returns ``(image (S, S, 3) float32 0..255, boxes (K', 4) in the new pixels, dropped)``:
    ``dropped`` is True when the crop lost a lesion.
    """
    from PIL import Image

    size = image.shape[0]
    crop_w, crop_h = size * rng.uniform(0.8, 1.0), size * rng.uniform(0.8, 1.0)
    x0, y0 = rng.uniform(0, size - crop_w), rng.uniform(0, size - crop_h)
    cropped = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + crop_w, y0 + crop_h))
    out = np.asarray(cropped, dtype=np.float32)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    keep = (cx >= x0) & (cx < x0 + crop_w) & (cy >= y0) & (cy < y0 + crop_h)
    kept = boxes[keep].copy()
    kept[:, [0, 2]] = (kept[:, [0, 2]] - x0) * size / crop_w
    kept[:, [1, 3]] = (kept[:, [1, 3]] - y0) * size / crop_h
    if rng.random() < 0.5:
        out = out[:, ::-1]
        kept[:, [0, 2]] = size - kept[:, [2, 0]]
    gray = out.mean(axis=2, keepdims=True)
    out = gray + (out - gray) * rng.uniform(0.6, 1.4)
    out = out.mean() + (out - out.mean()) * rng.uniform(0.7, 1.3)
    out = out * rng.uniform(0.7, 1.3) * rng.uniform(0.9, 1.1, size=3)
    return np.clip(out, 0, 255), kept, bool(np.count_nonzero(~keep))


class LesionSamples(EpochSeededDataset):
    """An epoch of training photos drawn with replacement.

    Items: ``(image (3, S, S), heatmap (1, G, G), size (2, G, G), size_mask (1, G, G),
    count_target (65,), grade_target (4,))``, float32, ``G = S / 4``.
    """

    def __init__(self, split: LesionSplit, *, length: int, seed: int, augmented: bool = True) -> None:
        super().__init__(length, seed=seed)
        self.split, self.augmented = split, augmented

    def draw(self, index: int, rng: np.random.Generator):
        pick = int(rng.integers(len(self.split.images)))
        image, boxes, grade = self.split.images[pick], self.split.boxes[pick], int(self.split.grades[pick])
        if self.augmented:
            image, boxes, dropped = augment(image, boxes, rng)
            if dropped:
                grade = int(grades_of_counts(np.array([len(boxes)]), HAYASHI)[0])
        size = image.shape[0]
        heatmap, sizes, mask = centre_heatmap(boxes, (size // STRIDE, size // STRIDE), stride=STRIDE)
        count_target = gen_label_distribution(count_to_bin(len(boxes)), N_COUNT_BINS, sigma=COUNT_SIGMA).astype(np.float32)
        grade_target = gen_label_distribution(grade, N_GRADES, sigma=GRADE_SIGMA).astype(np.float32)
        return normalise(image), heatmap, sizes, mask, count_target, grade_target


def lesion_loss(outputs, targets) -> "torch.Tensor":
    """Focal heat-map loss + 0.1 size L1 + 0.5 LDL soft-label cross-entropy (module docstring)."""
    import torch
    import torch.nn.functional as F

    count_logits, grade_logits, heat_logits, size_logits = outputs
    heatmap, sizes, mask, count_target, grade_target = targets
    positive = heatmap.eq(1.0).float()
    log_p, log_not_p = F.logsigmoid(heat_logits), F.logsigmoid(-heat_logits)
    p = torch.sigmoid(heat_logits)
    focal = -(positive * (1 - p) ** 2 * log_p + (1 - positive) * (1 - heatmap) ** 4 * p**2 * log_not_p).sum()
    lesions = positive.sum().clamp(min=1.0)
    size_l1 = (torch.abs(size_logits - sizes) * mask).sum() / mask.sum().clamp(min=1.0)
    count_ce = -(count_target * F.log_softmax(count_logits, dim=1)).sum(dim=1).mean()
    grade_ce = -(grade_target * F.log_softmax(grade_logits, dim=1)).sum(dim=1).mean()
    return focal / lesions + 0.1 * size_l1 + 0.5 * (count_ce + grade_ce)


def predict_split(network, split: LesionSplit, *, batch_size: int = 32, flip: bool = True):
    """Network outputs for every photo of ``split`` (eval mode, no augmentation).

    Returns ``(count_probs (N, 65), grade_probs (N, 4), heatmaps (N, G, G), size_logits (N, 2, G, G))``;
    with ``flip``, logits are averaged with those of the mirrored photo first.
    """
    from medimg.acne.inference import flip_averaged_logits
    from medimg.acne.models import LESION_OUTPUT
    from medimg.common.activation import activate
    from medimg.common.predictor import network_predictor

    predictor = network_predictor(network, next(network.parameters()).device, batch_size=batch_size)
    outputs: list[list[np.ndarray]] = [[], [], [], []]
    for start in range(0, len(split.images), batch_size):
        batch = np.stack([normalise(image) for image in split.images[start:start + batch_size]])
        logits = flip_averaged_logits(batch, predictor) if flip else predictor(batch)
        for store, value in zip(outputs, activate(logits, LESION_OUTPUT)):
            store.append(value)
    count_probs, grade_probs, heatmaps, sizes = (np.concatenate(store) for store in outputs)
    return count_probs, grade_probs, heatmaps[:, 0], sizes


def split_scores(split: LesionSplit, count_probs, grade_probs, heatmaps, sizes, *, thresholds=THRESHOLDS) -> dict[str, float]:
    """Counting and grading scores of one split (module docstring)."""
    counts, grades = split.counts, split.grades
    scores: dict[str, float] = {
        "ldl_count_mae": float(np.abs(count_probs.argmax(axis=1) + 1 - counts).mean()),
        "ldl_grade_acc": float((grade_probs.argmax(axis=1) == grades).mean()),
    }
    for threshold in thresholds:
        detected = np.array([len(detect_lesions(h, s, threshold=threshold, stride=STRIDE)) for h, s in zip(heatmaps, sizes)])
        scores[f"det{threshold:g}_mae"] = float(np.abs(detected - counts).mean())
        scores[f"det{threshold:g}_acc"] = float((grades_of_counts(detected, HAYASHI) == grades).mean())
    return scores


@distributable
def train_lesion(
    data_dir: Path | str,
    run_dir: Path | str,
    *,
    fold: int = 0,
    epochs: int = EPOCHS,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    lr_step_epochs: int = LR_STEP_EPOCHS,
    size: int = INPUT_SIZE,
    seed: int = 0,
    device: str = "auto",
    config: dict | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    split: str = "fold",
    resume: bool = True,
    steps_per_epoch: int | None = None,
    validate: bool = True,
):
    """Train ``acne-lesion`` on fold ``fold`` (``split="fold"``) or on every photo of
    ``NNEW_trainval_all.txt`` (``split="all"``); weights, checkpoint and log go to ``run_dir``.
    A fold's weights then get their detector threshold from :func:`calibrate_threshold`."""
    import torch

    from medimg.acne.dataset import parse_split_file
    from medimg.acne.lesionnet import build_lesionnet
    from medimg.common.device import resolve_device
    from medimg.common.models import weights_metadata
    from medimg.common.training import TrainingSettings, fit

    data_dir, run_dir = Path(data_dir), Path(run_dir)
    if size % 32 or size < 64:
        raise InputError(expected("an input size that is a multiple of 32, at least 64", size))
    boxes = read_boxes(data_dir / BOXES_NAME)
    entries = parse_split_file(data_dir / "NNEW_trainval_all.txt") if split == "all" else load_split(data_dir, fold, "trainval")
    train_split = load_lesion_split(data_dir, entries, boxes, size=size)
    steps = steps_per_epoch or max(1, len(entries) // batch_size)
    settings = TrainingSettings(epochs=epochs, steps_per_epoch=steps, learning_rate=learning_rate, lr_step_epochs=lr_step_epochs,
                                lr_gamma=0.1, lr_max_steps=1, weight_decay=1e-4, seed=seed)
    validate_fn = None
    if validate and split != "all" and split_file_path(data_dir, fold, "test").is_file():
        test_split = load_lesion_split(data_dir, load_split(data_dir, fold, "test"), boxes, size=size)

        def validate_fn(network) -> dict[str, float]:
            return split_scores(test_split, *predict_split(network, test_split, flip=False))

    torch.manual_seed(seed)
    network = build_lesionnet(**(config or {}))
    samples = LesionSamples(train_split, length=settings.samples_per_epoch(batch_size), seed=seed)

    def loss_fn(net, batch):
        images, *targets = batch
        return lesion_loss(net(images), targets)

    from medimg.acne.models import LESION_OUTPUT, LESION_PREPROCESSING

    arch = "acne-lesion"
    header = weights_metadata(arch, network, preprocessing={**LESION_PREPROCESSING, "input_size": size},
                              output={**LESION_OUTPUT, "threshold": threshold})
    run_entries = {"fold": str(fold) if split != "all" else "all", "batch_size": str(batch_size), "data_dir": str(data_dir),
                   "train_photos": str(len(entries))}
    result = fit(network, dataset=samples, batch_size=batch_size, loss_fn=loss_fn, settings=settings, run_dir=run_dir, arch=arch,
                 device=resolve_device(device), validate=validate_fn, resume=resume, metadata={**header, **run_entries})
    if split != "all":
        from medimg.common.training import current_ranks

        if current_ranks().is_main:
            chosen = calibrate_threshold(result.weights, data_dir, fold=fold, device=device)
            console.info(f"detector threshold {chosen['threshold']:g} (count MAE {chosen['train_mae'][chosen['threshold']]:.2f} "
                         f"on the {len(entries)} training photos)")
    return result


CALIBRATION_THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(11))  # 0.10 .. 0.60


def calibrate_threshold(weights: Path | str, data_dir: Path | str, *, fold: int | None = None, device: str = "auto",
                        thresholds: Sequence[float] = CALIBRATION_THRESHOLDS, count_from: str = "mean",
                        grade_from: str = "count") -> dict:
    """Pick the detector's threshold on the photos the network trained on, and store it.

    The photos of the weights' own training split (``NNEW_trainval_<fold>.txt``, the fold read from
    the weights unless given) are run as ``grade`` runs them (test-time flip); the threshold with
    the smallest *detected*-count MAE among ``thresholds`` (the detector calibrated as a counter of
    its own, since its boxes and ``lesions`` are shown as they are) is written into the weights' ``output`` with
    ``count_from`` and ``grade_from`` (what ``grade`` answers with: by default the mean of the LDL
    count and the detected count (:func:`medimg.acne.labels.answer_counts`) and its Hayashi grade,
    so that the grade always agrees with the count; see the model card) and
    ``test_flip = true``. The test split is never looked at.

    Returns ``{"threshold": t, "train_mae": {t: mae, ...}}``.
    """
    from medimg.common.device import resolve_device
    from medimg.common.models import load_model, weights_metadata
    from medimg.common.weights import load_weights, save_weights

    check_answer_rules(count_from, grade_from)
    model = load_model(weights)
    if model.arch != "acne-lesion":
        raise InputError(expected("acne-lesion weights", f"{model.arch} in '{weights}'"))
    fold = int(model.metadata.get("fold", 0)) if fold is None else fold
    size = int(model.preprocessing["input_size"])
    split = load_lesion_split(data_dir, load_split(data_dir, fold, "trainval"), read_boxes(Path(data_dir) / BOXES_NAME), size=size)
    network = model.network.to(resolve_device(device))
    _, _, heatmaps, sizes = predict_split(network, split, flip=True)
    maes = {}
    for threshold in thresholds:
        detected = np.array([len(detect_lesions(h, s, threshold=threshold, stride=STRIDE)) for h, s in zip(heatmaps, sizes)])
        maes[float(threshold)] = float(np.abs(detected - split.counts).mean())
    best = min(maes, key=maes.get)
    tensors, metadata = load_weights(weights, arch=model.arch)
    output = {**model.output, "threshold": best, "count_from": count_from, "grade_from": grade_from, "test_flip": True}
    header = weights_metadata(model.arch, model.network, preprocessing=model.preprocessing, output=output)
    save_weights(weights, tensors, arch=model.arch, metadata={**metadata, **header, "threshold_chosen_on": f"NNEW_trainval_{fold}.txt"})
    return {"threshold": best, "train_mae": maes}
