"""Masked modelling on a ViT: hide most patches, predict what is hidden.

"Masked Autoencoders Are Scalable Vision Learners" (MAE, 2021, arXiv 2111.06377): the encoder
sees only the visible patches; a light decoder gets the encoded visible tokens plus one shared
*mask token* per hidden patch, each with its position embedding, and predicts the hidden
patches' pixels. Two variants change only the target:

- ``target="teacher"``: the hidden patches' features under an EMA copy of the encoder that sees
  the whole image, as in "Self-Supervised Learning from Images with a Joint-Embedding Predictive
  Architecture" (I-JEPA, 2023, arXiv 2301.08243). The decoder is then I-JEPA's *predictor*;
- ``multiscale=True``: the decoder's tokens predict the hidden patches at half resolution, and
  an upsampling head (transposed convolution) predicts them at full resolution, a two-scale
  version of the reconstruction of "Rethinking Transformers Pre-training for Multi-Spectral
  Satellite Imagery" (SatMAE++, 2024, arXiv 2403.05419).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses, views
from .._validate import check_choice, check_positive_int, check_range
from ..masking import Masking, block_masking, random_masking
from ..models import patchify, unpatchify
from .base import Method, ema_update_, function_key, momentum_at

__all__ = ["MAE"]

TARGETS = ("norm_pixels", "pixels", "teacher")


class MAE(Method):
    """A masked autoencoder on a :class:`sslkit.models.TinyViT`, with pixel or teacher targets.

    Shapes (``N`` patches of ``P = p·p·3`` values, ``n_keep = N − round(N · mask_ratio)``)::

        images (B, 3, H, W) → view x (B, 3, S, S) → masking: keep_idx (B, n_keep), mask (B, N)
        encoder   vit.forward_tokens(x, keep_idx)                       (B, n_keep, dim)
        decoder   Linear(dim → d) ; append N − n_keep mask tokens ; unshuffle (ids_restore)
                  + decoder position embedding ; decoder_depth blocks   (B, N, d)
        head      Linear(d → P) pixels, or Linear(d → dim) teacher features     (B, N, ·)
        loss      masked_mse(pred, target, mask): mean over hidden patches only

    Pixel targets are :func:`sslkit.models.patchify` of the (normalised) view; with
    ``"norm_pixels"`` each target patch is standardised by its own mean and variance (the
    paper's default). Teacher targets are the EMA encoder's patch tokens on the full view,
    standardised per token (a LayerNorm without parameters, as I-JEPA does); the teacher follows
    the encoder by ``θ_t ← m·θ_t + (1 − m)·θ_o`` with ``m`` rising from ``momentum`` to 1.

    Args:
        vit: the encoder, a ``TinyViT`` (``forward_tokens``, ``num_patches``, ``grid``,
            ``patch_size``, ``dim``); ``.backbone`` after training, the encoder to evaluate.
        mask_ratio: fraction of patches hidden, in (0, 1); the paper's default 0.75.
        masking: ``"random"`` (a uniform subset per image) or ``"block"`` (``num_blocks``
            square-ish blocks), see :mod:`sslkit.masking`.
        target: ``"norm_pixels"``, ``"pixels"`` or ``"teacher"``.
        decoder_dim, decoder_depth, decoder_heads: the decoder (narrower and shallower than the
            encoder: it exists only for pretraining).
        multiscale: add the half-resolution target and the upsampling head (pixel targets and
            an even patch size only).
        momentum, momentum_schedule: the teacher's EMA (``target="teacher"`` only).
        recipe: the view (``None``: crop + flip at ``vit.image_size``); masking is the
            augmentation that matters, as the paper found.
        masking_fn: replaces the random masking (e.g. a learner's), called as
            ``masking_fn(batch_size, num_patches, mask_ratio, device=device)`` and returning
            ``(keep_idx, mask, ids_restore)`` as :func:`sslkit.masking.random_masking` does.

    Logs: ``masked_mse`` (the loss on the hidden patches; with ``multiscale`` the full-resolution
    term, next to ``coarse_mse``).
    """

    def __init__(self, vit: nn.Module, mask_ratio: float = 0.75, masking: str = "random",
                 target: str = "norm_pixels", decoder_dim: int = 64, decoder_depth: int = 1,
                 decoder_heads: int = 4, num_blocks: int = 2, multiscale: bool = False,
                 momentum: float = 0.99, momentum_schedule: str = "cosine",
                 recipe: views.Recipe | None = None,
                 masking_fn: Callable[..., tuple] | None = None):
        for attr in ("forward_tokens", "num_patches", "grid", "patch_size", "dim"):
            if not hasattr(vit, attr):
                raise ValueError(f"vit={type(vit).__name__} is invalid: MAE needs a ViT with "
                                 f"`{attr}` (e.g. sslkit.models.backbone('vit_tiny'))")
        super().__init__(vit)
        check_range("mask_ratio", mask_ratio, 0.0, 1.0, low_open=True, high_open=True)
        check_choice("masking", masking, ("random", "block"))
        check_choice("target", target, TARGETS)
        for name, value in (("decoder_dim", decoder_dim), ("decoder_depth", decoder_depth),
                            ("decoder_heads", decoder_heads), ("num_blocks", num_blocks)):
            check_positive_int(name, value)
        if decoder_dim % decoder_heads:
            raise ValueError(f"decoder_heads={decoder_heads} is invalid: it must divide "
                             f"decoder_dim={decoder_dim}")
        check_range("momentum", momentum, 0.0, 1.0, high_open=True)
        check_choice("momentum_schedule", momentum_schedule, ("cosine", "constant"))
        p = vit.patch_size
        if multiscale and (target == "teacher" or p % 2):
            raise ValueError(f"multiscale=True needs pixel targets and an even patch size, got "
                             f"target={target!r}, patch_size={p}")
        views.check_recipe(recipe)
        if masking_fn is not None and masking != "random":
            raise ValueError(f"masking_fn replaces the random masking: use it with "
                             f"masking='random', not {masking!r}")
        self.masking_fn = masking_fn
        self.mask_ratio, self.masking, self.target, self.num_blocks = (
            mask_ratio, masking, target, num_blocks)
        self.multiscale, self.momentum, self.momentum_schedule = (
            multiscale, momentum, momentum_schedule)
        self.recipe = recipe
        n, channels = vit.num_patches, vit.patch_embed.in_features // (p * p)
        self.decoder_embed = nn.Linear(vit.dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos = nn.Parameter(torch.zeros(1, n, decoder_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.decoder_pos, std=0.02)
        self.decoder = nn.ModuleList(
            nn.TransformerEncoderLayer(decoder_dim, decoder_heads, 2 * decoder_dim, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        out = vit.dim if target == "teacher" else p * p * channels
        if multiscale:  # tokens → half-resolution patches; upsampling → full-resolution ones
            half = (p // 2) ** 2 * channels
            self.head = nn.Linear(decoder_dim, half)
            self.upsample = nn.Sequential(
                nn.ConvTranspose2d(decoder_dim, decoder_dim, kernel_size=2, stride=2), nn.GELU(),
                nn.Conv2d(decoder_dim, half, kernel_size=1))
        else:
            self.head = nn.Linear(decoder_dim, out)
        if target == "teacher":  # an exact copy that never receives gradients
            self.teacher = copy.deepcopy(vit).requires_grad_(False)
        self.hparams = dict(mask_ratio=mask_ratio, masking=masking, target=target,
                            decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                            decoder_heads=decoder_heads, num_blocks=num_blocks,
                            multiscale=multiscale, momentum=momentum,
                            momentum_schedule=momentum_schedule, recipe=repr(recipe),
                            masking_fn=function_key(masking_fn))

    def sample_masking(self, batch_size: int, device: torch.device) -> Masking:
        """One :class:`sslkit.masking.Masking` of the method's pattern for a batch."""
        vit = self.backbone
        if self.masking == "block":
            return block_masking(batch_size, vit.grid, self.mask_ratio,
                                 num_blocks=self.num_blocks, device=device)
        if self.masking_fn is None:
            return random_masking(batch_size, vit.num_patches, self.mask_ratio, device=device)
        keep_idx, mask, ids_restore = self.masking_fn(batch_size, vit.num_patches,
                                                      self.mask_ratio, device=device)
        return Masking(keep_idx, mask, ids_restore)

    def decode(self, tokens: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Encoded visible tokens ``(B, n_keep, dim)`` → decoder tokens in grid order
        ``(B, N, decoder_dim)``: mask tokens fill the hidden places (``ids_restore``)."""
        b, n_keep, _ = tokens.shape
        x = self.decoder_embed(tokens)
        fill = self.mask_token.expand(b, ids_restore.shape[1] - n_keep, -1)
        x = torch.cat([x, fill], dim=1)                                    # shuffled order
        x = x.gather(1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = x + self.decoder_pos
        for block in self.decoder:
            x = block(x)
        return self.decoder_norm(x)

    def reconstruct(self, x: torch.Tensor, masking: Masking) -> torch.Tensor | tuple:
        """Predictions for every patch of the float view ``x`` ``(B, 3, S, S)``: ``(B, N, out)``,
        or ``(half-resolution (B, N, P/4), full-resolution (B, N, P))`` with ``multiscale``."""
        vit = self.backbone
        tokens = vit.forward_tokens(x, keep_idx=masking.keep_idx)
        tokens = tokens[:, tokens.shape[1] - masking.keep_idx.shape[1]:]    # drop a class token
        d = self.decode(tokens, masking.ids_restore)
        if not self.multiscale:
            return self.head(d)
        g, half = vit.grid, vit.patch_size // 2
        fmap = d.transpose(1, 2).reshape(d.shape[0], -1, g, g)              # (B, d, g, g)
        fine = self.upsample(fmap).flatten(2).transpose(1, 2)               # (B, 4N, P/4)
        full = patchify(unpatchify(fine, half, (2 * g, 2 * g)), vit.patch_size)
        return self.head(d), full

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """What the hidden patches should be: ``(B, N, P)`` patches or ``(B, N, dim)`` teacher
        tokens (not yet standardised; :func:`sslkit.losses.masked_mse` does that)."""
        if self.target != "teacher":
            return patchify(x, self.backbone.patch_size)
        with torch.no_grad():
            t = self.teacher.forward_tokens(x)
            return t[:, t.shape[1] - self.backbone.num_patches:]

    def training_step(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """Masked-patch loss of one batch; ``labels`` are ignored."""
        vit = self.backbone
        recipe = self.recipe or views.crop_flip_recipe(vit.image_size)
        x = views.augment(images, recipe)                                   # (B, 3, S, S)
        masking = self.sample_masking(x.shape[0], x.device)
        norm = self.target != "pixels"
        pred, target = self.reconstruct(x, masking), self.targets(x)
        if not self.multiscale:
            loss = losses.masked_mse(pred, target, masking.mask, norm_pix=norm)
            return loss, {"masked_mse": loss.item()}
        coarse_target = patchify(F.avg_pool2d(x, 2), vit.patch_size // 2)
        coarse = losses.masked_mse(pred[0], coarse_target, masking.mask, norm_pix=norm)
        fine = losses.masked_mse(pred[1], target, masking.mask, norm_pix=norm)
        return coarse + fine, {"masked_mse": fine.item(), "coarse_mse": coarse.item()}

    @torch.no_grad()
    def on_step_end(self, step: int, total_steps: int | None) -> None:
        """Moving-average update of the teacher (``target="teacher"`` only)."""
        if self.target == "teacher":
            m = momentum_at(self.momentum, self.momentum_schedule, step, total_steps)
            ema_update_(self.teacher, self.backbone, m)
