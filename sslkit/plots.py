"""Figures the notebooks share: image grids, training curves, label-efficiency curves and the
report card's bars.

Every function returns a ``matplotlib`` ``Figure`` with labelled axes and a title, and closes
it from pyplot's registry, so a notebook shows it by leaving it as the cell's last expression
(and a script can ``fig.savefig``) without figures piling up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

__all__ = ["image_grid", "training_curves", "label_efficiency_curves", "report_card_figure"]


def image_grid(images: torch.Tensor, titles: Sequence[str] | None = None, *, ncols: int = 8,
               size: float = 1.3, title: str | None = None, fontsize: int = 7):
    """Show ``uint8`` images ``(N, 3, H, W)`` (or masks ``(N, H, W)``) in a grid with titles."""
    n = images.shape[0]
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i].detach().cpu()
        if img.ndim == 3:
            ax.imshow(img.permute(1, 2, 0).numpy())
        else:
            ax.imshow(img.float().numpy(), cmap="gray", vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=fontsize)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def training_curves(history, *, title: str = "Training", log_keys: Sequence[str] = ()):
    """Loss (and any ``history.logs`` entries named in ``log_keys``, and the online kNN
    accuracy if it was monitored) against the step of a :class:`sslkit.train.History`."""
    extra = [k for k in log_keys if k in history.logs] + (["kNN"] if history.knn_step else [])
    fig, axes = plt.subplots(1, 1 + len(extra), figsize=(4.2 * (1 + len(extra)), 3),
                             squeeze=False)
    ax = axes[0, 0]
    ax.plot(history.step, history.loss)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    for ax, key in zip(axes[0, 1:], extra, strict=True):
        if key == "kNN":
            ax.plot(history.knn_step, history.knn_acc, marker="o")
            ax.set_ylabel("online kNN accuracy")
        else:
            ax.plot(history.step, history.logs[key])
            ax.set_ylabel(key)
        ax.set_xlabel("step")
        ax.set_title(key)
    fig.tight_layout()
    plt.close(fig)
    return fig


def label_efficiency_curves(tables: Mapping[str, object], num_classes: int, *,
                            title: str = "Label efficiency"):
    """Accuracy vs labels per class (log axis), one line per encoder, with the chance level.

    ``tables`` maps an encoder name to the ``DataFrame`` of
    :func:`sslkit.evaluate.label_efficiency` (columns ``n_labels``, ``accuracy``, …).
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, table in tables.items():
        ax.plot(table["n_labels"] / num_classes, table["accuracy"], marker="o", label=name)
    ax.axhline(1 / num_classes, color="gray", ls="--", label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("labels per class (log scale; last point = all labels)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def report_card_figure(table, *, num_classes: int, k: int, labels_per_class: int,
                       name: str = "encoder"):
    """Horizontal bars of a report card (:func:`sslkit.baselines.report_card`): one row per
    encoder, linear probe and kNN side by side, the chance level as a dashed line."""
    rows = len(table)
    fig, ax = plt.subplots(figsize=(7, 0.6 * rows + 1.2))
    ypos = torch.arange(rows).float()
    ax.barh(ypos - 0.2, table["linear_probe"], height=0.4, label="linear probe")
    ax.barh(ypos + 0.2, table["knn"], height=0.4, label=f"kNN (k={k})")
    ax.axvline(1 / num_classes, color="gray", ls="--", label="chance")
    ax.set_yticks(ypos.tolist(), table["encoder"].tolist())
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"test accuracy ({labels_per_class} labels per class)")
    ax.set_title(f"Report card: {name} vs baselines")
    ax.legend(loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return fig
