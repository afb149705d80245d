"""Training the acne networks by label-distribution learning on an ACNE04-style folder.

The data are one fold of ACNE04's layout (``JPEGImages/`` + ``NNEW_trainval_k.txt`` /
``NNEW_test_k.txt``), the real data set as it is or ``medimg acne synth``'s. Per image:

- input: the report's training transform (resize 256, random 224 crop, horizontal flip, rotation
  up to 20 degrees); images are decoded and resized to 256 x 256 once, in memory, so an epoch
  costs no JPEG decoding;
- count target: ``genLD`` over the 65 count bins centred on the count's bin, sigma 3.0;
- grade target (``grade_target``, stored in the weights metadata):
  ``"cou2cls"`` (default) -- the count target summed per grade under the criterion, as the LDL
  reference code builds it; the split file's grade column is not used (on ACNE04 the count
  determines it under Hayashi; lines where the column differs are counted on stderr);
  ``"column"`` -- ``genLD`` over the 4 grades centred on the grade column, sigma
  ``GRADE_COLUMN_SIGMA`` = 0.5 grade (0.79 on the grade, 0.11 on each neighbour for a middle
  grade): the grade head learns the column, the truth ``evaluate`` scores it against;
  the ``L_cou2cls`` term then also compares the count head's implied grade with the column;
- loss: ``losses.ldl_loss``, by default the report's ``a/2 (L_cou2cls + L_cou) + (1 - a) L_cls``
  (``weighting="ldl"``: the LDL reference code's ``a/2 (L_cls + L_cou2cls) + (1 - a) L_cou``).

Adam with weight decay and a step learning rate (divided by 10 every ``lr_step_epochs``), as in
the report. After each epoch the fold's test split is scored (grade-head and count-derived
accuracy, count MAE) into ``train_log.csv``. Training resumes from ``run_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medimg.acne.dataset import (
    SplitEntry,
    image_path,
    load_split,
    split_columns,
    split_file_path,
    warn_grade_disagreements,
)
from medimg.acne.labels import (
    HAYASHI,
    N_COUNT_BINS,
    N_GRADES,
    GradingCriterion,
    cou2cls_matrix,
    count_to_bin,
    count_to_grade_distribution,
    gen_label_distribution,
    gen_label_distributions,
    grades_of_counts,
)
from medimg.acne.transforms import (
    INPUT_SIZE,
    TRAIN_RESIZE,
    test_transform,
    train_transform,
)
from medimg.common import console
from medimg.common.errors import InputError, OptionValueError, expected
from medimg.common.images import read_image
from medimg.common.process_group import distributable
from medimg.common.sampling import EpochSeededDataset
from medimg.common.training import TrainingResult, TrainingSettings, fit

# report's defaults (SPEC section 2)
LEARNING_RATE = 1e-4
WEIGHT_DECAY = 5e-4
BATCH_SIZE = 64
EPOCHS = 120
LR_STEP_EPOCHS = 30
SIGMA = 3.0
ALPHA = 0.6
WEIGHTINGS = ("report", "ldl")  # losses.WEIGHTINGS, repeated so that checking needs no torch import
GRADE_TARGETS = ("cou2cls", "column")
# Fixed rather than an option: wide enough to soften the grade boundaries, narrow enough that the
# column's grade keeps most of the mass (a count-sized sigma of 3 would be nearly uniform over 4 grades).
GRADE_COLUMN_SIGMA = 0.5
GRADE_TARGET_CONSEQUENCES = {
    "cou2cls": "the grade head is trained on cou2cls(count) (the LDL reference), not on the column that evaluate "
    "scores it against; --grade-target column trains it on the column",
    "column": "the grade head is trained on the column and the count head on the count, so on those lines they "
    "cannot both be right",
}


@dataclass
class LoadedSplit:
    entries: list[SplitEntry]
    images: np.ndarray  # (N, H, W, 3) uint8 (train: resized to 256 x 256) or (N, 3, 224, 224) float32 (test)

    @property
    def counts(self) -> np.ndarray:
        return np.array([entry.count for entry in self.entries], dtype=np.int64)

    @property
    def grades(self) -> np.ndarray:
        return np.array([entry.grade for entry in self.entries], dtype=np.int64)


def resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3) uint8 -> (size, size, 3) uint8``, bilinear, as the training transform's first step."""
    from PIL import Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def load_training_images(data_dir: Path, entries: list[SplitEntry], *, size: int = TRAIN_RESIZE) -> np.ndarray:
    """Every image of a split, decoded (EXIF-oriented RGB) and resized to ``size``.

    Returns
    -------
    images : (N, size, size, 3) ndarray of uint8
    """
    images = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    for i, entry in enumerate(console.track(entries, description="load train images")):
        images[i] = resize_rgb(read_image(image_path(data_dir, entry)), size)
    return images


def load_test_inputs(data_dir: Path, entries: list[SplitEntry]) -> np.ndarray:
    """Every image of a split as the network sees it at test time.

    Returns
    -------
    inputs : (N, 3, 224, 224) ndarray of float32
    """
    inputs = np.empty((len(entries), 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for i, entry in enumerate(console.track(entries, description="load test images")):
        inputs[i] = test_transform(read_image(image_path(data_dir, entry)))
    return inputs


def label_targets(
    counts: np.ndarray,
    *,
    sigma: float = SIGMA,
    criterion: GradingCriterion = HAYASHI,
    grade_target: str = "cou2cls",
    grades: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """LDL targets of lesion counts (and grades).

    Parameters
    ----------
    counts : (N,) ndarray of int
    grade_target : ``"cou2cls"`` or ``"column"``
    grades : (N,) ndarray of int 0..3, the split file's grade column; needed for ``"column"``

    Returns
    -------
    count_targets : (N, 65) ndarray of float32
        ``genLD`` centred on each count's bin.
    grade_targets : (N, 4) ndarray of float32
        ``"cou2cls"``: ``count_targets`` summed per grade under ``criterion``;
        ``"column"``: ``genLD`` over the 4 grades centred on each grade, sigma ``GRADE_COLUMN_SIGMA``.
    """
    check_grade_target(grade_target)
    count_targets = np.stack([gen_label_distribution(count_to_bin(c), N_COUNT_BINS, sigma=sigma) for c in np.asarray(counts).reshape(-1)])
    count_targets = count_targets.astype(np.float32).reshape(-1, N_COUNT_BINS)
    if grade_target == "cou2cls":
        return count_targets, count_to_grade_distribution(count_targets, criterion).astype(np.float32)
    if grades is None or np.asarray(grades).reshape(-1).shape != (len(count_targets),):
        got = "none" if grades is None else f"{np.asarray(grades).size} grades for {len(count_targets)} counts"
        raise InputError(expected("one grade per count for grade_target 'column'", got))
    return count_targets, gen_label_distributions(np.asarray(grades).reshape(-1), N_GRADES, sigma=GRADE_COLUMN_SIGMA)


def check_grade_target(grade_target: str) -> None:
    if grade_target not in GRADE_TARGETS:
        raise OptionValueError(expected(f"a grade target among {', '.join(GRADE_TARGETS)}", repr(grade_target)))


def validation_scores(network, inputs: np.ndarray, split: LoadedSplit, *, criterion: GradingCriterion, batch_size: int) -> dict[str, float]:
    """Accuracy of both grades and count MAE of ``network`` on preloaded test inputs
    (``(N, 3, 224, 224)`` float32), read through the same activation as ``grade``."""
    from medimg.acne.inference import predict_probabilities
    from medimg.common.predictor import network_predictor

    predictor = network_predictor(network, next(network.parameters()).device, batch_size=batch_size)
    count_probs, grade_probs = predict_probabilities(inputs, predictor)
    counts = count_probs.argmax(axis=1) + 1
    grade_head = grade_probs.argmax(axis=1)
    truth = split.grades
    return {
        "val_grade_acc": float(np.mean(grade_head == truth)),
        "val_count_grade_acc": float(np.mean(grades_of_counts(counts, criterion) == truth)),
        "val_count_mae": float(np.mean(np.abs(counts - split.counts))),
    }


def parse_model_config(text: str | None) -> dict | None:
    """``build_model`` keywords from a JSON object given on the command line (``None`` stays ``None``)."""
    from medimg.common.tables import json_object

    if text is None:
        return None
    config = json_object(text)
    if config is None:
        raise InputError(expected("a JSON object of build_model keywords, e.g. '{\"embed_dim\": 64}'", repr(text)))
    return config


def _model_kwargs(model_config: dict | None, preset: str | None) -> dict:
    config = dict(model_config or {})
    if preset is not None:
        config["preset"] = preset
    return config


class ImageSamples(EpochSeededDataset):
    """An epoch of training images drawn with replacement, each with its LDL targets.

    Items are ``(image, count_target, grade_target)``: ``(3, 224, 224)``, ``(65,)`` and ``(4,)``
    float32 ndarrays; the image through :func:`train_transform` (``augment``) or
    :func:`test_transform`.
    """

    def __init__(self, images: np.ndarray, count_targets: np.ndarray, grade_targets: np.ndarray, *, augment: bool, length: int,
                 seed: int) -> None:
        super().__init__(length, seed=seed)
        self.images, self.count_targets, self.grade_targets, self.augment = images, count_targets, grade_targets, augment

    def draw(self, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pick = int(rng.integers(len(self.images)))
        image = train_transform(self.images[pick], rng=rng) if self.augment else test_transform(self.images[pick])
        return image, self.count_targets[pick], self.grade_targets[pick]


@distributable
def train(
    data_dir: Path | str,
    run_dir: Path | str,
    *,
    fold: int = 0,
    model: str = "fusion",
    model_config: dict | None = None,
    preset: str | None = None,
    epochs: int = EPOCHS,
    steps_per_epoch: int | None = None,
    batch_size: int = BATCH_SIZE,
    learning_rate: float = LEARNING_RATE,
    weight_decay: float = WEIGHT_DECAY,
    lr_step_epochs: int = LR_STEP_EPOCHS,
    sigma: float = SIGMA,
    alpha: float = ALPHA,
    weighting: str = "report",
    criterion: GradingCriterion = HAYASHI,
    grade_target: str = "cou2cls",
    seed: int = 0,
    device: str = "auto",
    resume: bool = True,
    augment: bool = True,
    validate: bool = True,
    num_workers: int = 0,
) -> TrainingResult:
    """Train ``model`` on fold ``fold``'s trainval split; weights, checkpoint and log go to ``run_dir``.

    ``steps_per_epoch`` defaults to one pass over the trainval images (``len // batch_size``,
    at least 1); images are drawn with replacement, each with its own seeded generator
    (:class:`ImageSamples`), by ``num_workers`` DataLoader workers (0: in this process).
    ``model_config`` (and ``preset``) are ``build_model`` keywords, stored in the weights' model
    header (``config``, :func:`medimg.common.models.weights_metadata`).
    ``grade_target`` picks the grade head's target (module docstring); lines whose grade column
    differs from ``criterion(count)`` are counted and said on stderr.
    Validation on ``NNEW_test_<fold>.txt`` runs after every epoch when that file exists.
    """
    import torch

    from medimg.acne.losses import ldl_loss
    from medimg.acne.models import build_model
    from medimg.common.device import resolve_device
    from medimg.common.models import arch_of, weights_metadata

    if batch_size < 1:
        raise InputError(expected("a batch size >= 1", batch_size))
    if not 0.0 <= alpha <= 1.0:
        raise InputError(expected("alpha in [0, 1]", alpha))
    if weighting not in WEIGHTINGS:
        raise OptionValueError(expected(f"a loss weighting among {', '.join(WEIGHTINGS)}", repr(weighting)))
    check_grade_target(grade_target)
    arch = arch_of("acne", model)
    data_dir, run_dir = Path(data_dir), Path(run_dir)

    entries = load_split(data_dir, fold, "trainval")
    steps = steps_per_epoch if steps_per_epoch is not None else max(1, len(entries) // batch_size)
    settings = TrainingSettings(
        epochs=epochs, steps_per_epoch=steps, learning_rate=learning_rate, lr_step_epochs=lr_step_epochs,
        lr_gamma=0.1, weight_decay=weight_decay, seed=seed,
    )
    warn_grade_disagreements(*split_columns(entries), criterion, consequence=GRADE_TARGET_CONSEQUENCES[grade_target])
    train_split = LoadedSplit(entries, load_training_images(data_dir, entries))
    count_targets, grade_targets = label_targets(train_split.counts, sigma=sigma, criterion=criterion, grade_target=grade_target, grades=train_split.grades)
    console.info(f"fold {fold}: {len(entries)} training images, {steps} steps of {batch_size} per epoch")

    validate_fn = None
    if validate and split_file_path(data_dir, fold, "test").is_file():
        test_entries = load_split(data_dir, fold, "test")
        test_split = LoadedSplit(test_entries, load_test_inputs(data_dir, test_entries))

        def validate_fn(network) -> dict[str, float]:
            return validation_scores(network, test_split.images, test_split, criterion=criterion, batch_size=batch_size)
    elif validate:
        console.info(f"no {split_file_path(data_dir, fold, 'test').name}: training without validation")

    torch_device = resolve_device(device)
    torch.manual_seed(seed)
    network = build_model(model, **_model_kwargs(model_config, preset))
    cou2cls = torch.from_numpy(cou2cls_matrix(criterion))
    samples = ImageSamples(train_split.images, count_targets, grade_targets, augment=augment,
                           length=settings.samples_per_epoch(batch_size), seed=seed)

    def loss_fn(net, batch):
        images, count_target, grade_target = batch
        count_logits, grade_logits = net(images)
        loss, _ = ldl_loss(count_logits, grade_logits, count_target, grade_target, cou2cls=cou2cls.to(images.device), alpha=alpha, weighting=weighting)
        return loss

    run_entries = {
        "criterion": criterion.name,
        "criterion_upper": ",".join(str(value) for value in criterion.upper),
        "sigma": str(sigma),
        "alpha": str(alpha),
        "weighting": weighting,
        "grade_target": grade_target,
        **({"grade_sigma": str(GRADE_COLUMN_SIGMA)} if grade_target == "column" else {}),
        "fold": str(fold),
        "batch_size": str(batch_size),
        "augment": str(augment),
        "data_dir": str(data_dir),
    }
    return fit(
        network, dataset=samples, batch_size=batch_size, num_workers=num_workers, loss_fn=loss_fn, settings=settings, run_dir=run_dir,
        arch=arch, device=torch_device, validate=validate_fn, resume=resume, metadata={**weights_metadata(arch, network), **run_entries},
    )
