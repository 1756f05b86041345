"""OBoW: predict, from one view, the bag of visual words a teacher sees in another.

"OBoW: Online Bag-of-Visual-Words Generation for Self-Supervised Learning" (2021,
arXiv 2012.11552), in a compact teaching version:

1. a **teacher** (an EMA copy of the backbone) computes a local feature map of a view,
   ``(B, C, h, w)``;
2. each local feature is softly assigned to a **vocabulary** of ``K`` visual words (centroids of
   local features): ``softmax(−‖u − w_k‖² / δ)`` with ``δ`` the batch's mean squared distance
   times ``word_temperature``;
3. the assignments are max-pooled over the ``h·w`` positions and normalised to sum to 1: the
   image's **bag of words** ``y`` ``(B, K)``, the target;
4. the **student** (the backbone being trained) sees another view and predicts ``y`` from its
   global feature through a linear layer: cross-entropy ``−Σ_k y_k log p_k``.

The vocabulary is refreshed online: at the start of every pass over the pool, k-means
(:func:`sslkit.cluster.kmeans`) on the teacher's local features of ``vocabulary_images``
images. (The paper keeps a queue of local features and samples words from it at every step,
and predicts with a dynamically generated classifier; both are left out here.) Because the
target describes *local* parts of the image, the student must recognise them from a different
crop and colouring: context, not colour.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .. import cluster, views
from .._validate import check_positive_int, check_range, check_temperature
from .base import Method, ema_update_

__all__ = ["OBoW"]


class OBoW(Method):
    """A compact OBoW: EMA teacher → bag of visual words → the student predicts it.

    "OBoW: Online Bag-of-Visual-Words Generation for Self-Supervised Learning" (2021,
    arXiv 2012.11552). Shapes::

        images (B, 3, H, W) → views x_t, x_s (B, 3, S, S)
        teacher.forward_features_map(x_t) → u (B, C, h, w) → soft words (B, h·w, K)
            → max over positions, normalised → y (B, K), no gradient
        student: predictor(backbone(x_s)) → logits (B, K) → loss −Σ y · log_softmax(logits)

    Args:
        backbone: an encoder with ``forward_features_map`` (``SmallCNN``, ``ResNet18Cifar``).
        num_words: ``K``, the vocabulary size.
        word_temperature: scales ``δ`` of the soft word assignment (smaller: harder).
        momentum: of the teacher's EMA (``ema_update_`` after every step).
        vocabulary_images: how many images of the pool the vocabulary's k-means sees.
        recipe: the views (``None``: ``views.simclr_recipe(S, colour="strong")``).
        seed: of the vocabulary's k-means and image draw (epoch ``e`` uses ``seed + e``).

    Logs: ``bow_entropy`` (mean entropy of the targets; ``log K`` is a bag of every word) and
    ``words_used`` (share of words that are some position's nearest word in the batch).
    """

    def __init__(self, backbone: nn.Module, num_words: int = 64, word_temperature: float = 0.2,
                 momentum: float = 0.99, vocabulary_images: int = 1_000,
                 recipe: views.Recipe | None = None, seed: int = 0):
        super().__init__(backbone)
        if not hasattr(backbone, "forward_features_map"):
            raise ValueError(f"OBoW needs a backbone with forward_features_map (local features);"
                             f" {type(backbone).__name__} has none")
        check_positive_int("num_words", num_words)
        check_temperature(word_temperature, name="word_temperature")
        check_range("momentum", momentum, 0.0, 1.0, high_open=True)
        check_positive_int("vocabulary_images", vocabulary_images)
        views.check_recipe(recipe)
        self.teacher = copy.deepcopy(backbone).requires_grad_(False)
        self.predictor = nn.Linear(backbone.feature_dim, num_words)
        self.word_temperature, self.momentum = word_temperature, momentum
        self.vocabulary_images, self.recipe, self.seed = vocabulary_images, recipe, seed
        self.register_buffer("words", torch.zeros(num_words, backbone.feature_dim))
        self.hparams = dict(num_words=num_words, word_temperature=word_temperature,
                            momentum=momentum, vocabulary_images=vocabulary_images,
                            recipe=repr(recipe), seed=seed)

    def _recipe(self, images: torch.Tensor) -> views.Recipe:
        return self.recipe or views.simclr_recipe(images.shape[-1], colour="strong")

    @torch.no_grad()
    def local_features(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's local features of float views ``(B, 3, S, S)`` → ``(B, h·w, C)``."""
        self.teacher.eval()
        return self.teacher.forward_features_map(x).flatten(2).transpose(1, 2).float()

    @torch.no_grad()
    def on_epoch_start(self, epoch: int, images: torch.Tensor) -> None:
        """New vocabulary: k-means on the teacher's local features of a draw of the pool."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        pick = torch.randperm(images.shape[0], generator=g)[:self.vocabulary_images]
        x = views.augment(images[pick.to(images.device)], self._recipe(images),
                          generator=g if images.device.type == "cpu" else None)
        u = torch.cat([self.local_features(c.to(self.words.device)) for c in x.split(256)])
        u = u.flatten(0, 1)                                                  # (n·h·w, C)
        k = self.words.shape[0]
        self.words.copy_(cluster.kmeans(u, k, iters=20, seed=self.seed + epoch).centroids)

    @torch.no_grad()
    def _words_of(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bags of words ``(B, K)`` of float views and every position's nearest word
        ``(B, h·w)``."""
        u = self.local_features(x)                                           # (B, P, C)
        d2 = torch.cdist(u, self.words[None].expand(len(u), -1, -1)).square()  # (B, P, K)
        delta = d2.mean().clamp_min(1e-12) * self.word_temperature
        soft = F.softmax(-d2 / delta, dim=-1).amax(dim=1)                    # (B, K)
        return soft / soft.sum(dim=1, keepdim=True), d2.argmin(-1)

    def bag_of_words(self, x: torch.Tensor) -> torch.Tensor:
        """The target of float views ``(B, 3, S, S)``: ``(B, K)``, each row summing to 1."""
        return self._words_of(x)[0]

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Cross-entropy of the student's prediction against the teacher's bag of words."""
        x_t, x_s = views.two_views(images, self._recipe(images))
        target, nearest = self._words_of(x_t)                                # (B, K), (B, P)
        log_p = F.log_softmax(self.predictor(self.backbone(x_s)).float(), dim=1)
        loss = -(target * log_p).sum(1).mean()
        entropy = -torch.special.xlogy(target, target).sum(1).mean().item()
        used = nearest.unique().numel() / self.words.shape[0]
        return loss, {"bow_entropy": entropy, "words_used": used}

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Move the teacher towards the student: ``θ_t ← m·θ_t + (1 − m)·θ_s``."""
        ema_update_(self.teacher, self.backbone, self.momentum)
