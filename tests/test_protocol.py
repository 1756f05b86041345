"""The evaluation protocol can tell a learned encoder from a random one (COURSE.md §8).

One end-to-end run of `baselines.report_card` on `hard` ShapeWorld: raw pixels and a random-init
small CNN must be near chance, while a network trained on 100 labels per class must beat them by a
clear margin. A probe that could not separate these would make every later result meaningless.
"""

from __future__ import annotations

import pytest
import torch

from sslkit import baselines, data, models


@pytest.fixture(scope="module")
def card():
    splits = data.shapeworld_splits("hard", n_unlabeled=10, labels_per_class=100, n_val=500,
                                    n_test=1000, seed=3)
    torch.manual_seed(0)
    table, fig = baselines.report_card(models.SmallCNN(), splits, labels_per_class=100,
                                       supervised_steps=300, name="random CNN", cache=False)
    return table.set_index("encoder")


def test_report_card_has_every_baseline(card):
    assert list(card.index) == ["raw pixels", "random init",
                                "supervised from scratch (100/class)", "random CNN"]
    assert card.loc["raw pixels", "feature_dim"] == 3 * 32 * 32
    assert ((card[["linear_probe", "knn"]] >= 0) & (card[["linear_probe", "knn"]] <= 1)).all().all()


def test_untrained_features_are_near_chance_on_hard(card):
    for row in ("raw pixels", "random init", "random CNN"):
        assert card.loc[row, "knn"] < 0.25, row


def test_supervised_on_100_labels_per_class_beats_them_by_a_clear_margin(card):
    sup = card.loc["supervised from scratch (100/class)"]
    for row in ("raw pixels", "random init"):
        assert sup["linear_probe"] >= card.loc[row, "linear_probe"] + 0.2, row
        assert sup["knn"] >= card.loc[row, "knn"] + 0.15, row
