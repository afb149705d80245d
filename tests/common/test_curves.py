"""Training curves: a loss panel, a validation panel when the log has metrics, written atomically."""

import numpy as np
from PIL import Image

from medimg.common.curves import metric_names, write_training_curves

HISTORY = [
    {"epoch": 1, "lr": 0.01, "loss": 0.9, "seconds": 1.0, "dice": 0.2},
    {"epoch": 2, "lr": 0.01, "loss": 0.5, "seconds": 1.0, "dice": 0.5, "iou": 0.33},
    {"epoch": 3, "lr": 0.001, "loss": 0.3, "seconds": 1.0, "dice": 0.7, "iou": 0.54},
]


def test_metric_names_are_the_validation_columns_in_first_seen_order():
    assert metric_names(HISTORY) == ["dice", "iou"]
    assert metric_names([{"epoch": 1, "lr": 0.1, "loss": 1.0, "seconds": 2.0}]) == []


def test_curves_with_metrics_have_two_panels(tmp_path):
    path = write_training_curves(tmp_path / "run" / "train_curves.png", HISTORY)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (400, 1000, 3)  # 10 x 4 inches at 100 dpi
    assert image.std() > 10  # lines and text, not a blank canvas
    red = (image[..., 0] > 200) & (image[..., 1] < 80) & (image[..., 2] < 80)
    assert red[:, :500].sum() > 50 and red[:, 500:].sum() == 0  # the loss (red) only in the left panel
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["train_curves.png"]  # no temporary file left


def test_curves_without_metrics_have_one_panel(tmp_path):
    path = write_training_curves(tmp_path / "c.png", [{key: row[key] for key in ("epoch", "lr", "loss", "seconds")} for row in HISTORY])
    assert Image.open(path).size == (550, 400)
