"""Training curves: ``train_curves.png`` beside ``train_log.csv``, redrawn after every epoch.

The loss per epoch in the first panel and every validation metric in the second (as the seed
000 paper's Fig. 10 plots loss and accuracy against epochs); the learning rate's steps are drawn
as dotted vertical lines, so a jump in the loss can be read against them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medimg.common.outputs import atomic_path

CURVES_NAME = "train_curves.png"
NOT_METRICS = ("epoch", "lr", "loss", "seconds")


def metric_names(history: Sequence[dict[str, float]]) -> list[str]:
    """Validation metrics in the log, in first-seen order (what the second panel draws)."""
    names: dict[str, None] = {}
    for row in history:
        names.update((key, None) for key in row if key not in NOT_METRICS)
    return list(names)


def write_training_curves(path: Path | str, history: Sequence[dict[str, float]]) -> Path:
    """Draw ``history`` (one row per epoch: epoch, lr, loss, seconds, metrics...) as a PNG at
    ``path``, atomically. Returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    metrics = metric_names(history)
    figure = Figure(figsize=(10 if metrics else 5.5, 4), dpi=100, layout="constrained")
    panels = figure.subplots(1, 2 if metrics else 1, squeeze=False)[0]
    panels[0].plot(epochs, [row["loss"] for row in history], marker="o", markersize=3, color="tab:red", label="training loss")
    panels[0].set_title("Loss")
    if metrics:
        for name in metrics:
            points = [(row["epoch"], row[name]) for row in history if name in row]
            panels[1].plot(*zip(*points), marker="o", markersize=3, label=name)
        panels[1].set_title("Validation")
    rate_steps = [now["epoch"] - 0.5 for before, now in zip(history, history[1:]) if now["lr"] != before["lr"]]
    for panel in panels:
        for step in rate_steps:
            panel.axvline(step, color="grey", linestyle=":", linewidth=1)
        panel.set_xlabel("epoch")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.grid(alpha=0.3)
        panel.legend(loc="best", fontsize="small")
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    return Path(path)
