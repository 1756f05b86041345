"""Models: the backbones that turn images into feature vectors, and the small heads put on top.

Every backbone maps a float image batch ``(B, 3, S, S)`` to features ``(B, feature_dim)`` and
exposes ``.feature_dim``, so methods, probes and notebooks never need to know which one they got:

- :class:`SmallCNN` (the ``quick`` profile's encoder): four conv-BN-ReLU blocks and a global pool.
- :class:`ResNet18Cifar`: ResNet-18 with the CIFAR stem, *Deep Residual Learning for Image
  Recognition* (2015, arXiv 1512.03385).
- :class:`TinyViT`: a small Vision Transformer, *An Image is Worth 16x16 Words: Transformers for
  Image Recognition at Scale* (2020, arXiv 2010.11929), with :func:`patchify` / :func:`unpatchify`
  and ``forward_tokens(x, keep_idx=...)`` for masked modeling.

Heads: :class:`MLP`, :func:`projector` (SimCLR) and :func:`predictor` (BYOL). :func:`backbone`
builds a backbone by name and :func:`count_parameters` counts weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from ._validate import check_choice, check_positive_int, check_range

__all__ = [
    "SmallCNN", "ResNet18Cifar", "TinyViT", "patchify", "unpatchify", "MLP", "projector",
    "predictor", "classifier_head", "backbone", "BACKBONES", "count_parameters",
]


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(
            f"widths={widths!r} is invalid: expected a sequence of integers >= 1"
        ) from None
    if not widths:
        raise ValueError("widths=() is invalid: expected at least one integer >= 1")
    for w in widths:
        check_positive_int("widths", w, hint=f"got widths={widths!r}")
    return widths


def _to_channels_last(x: torch.Tensor) -> torch.Tensor:
    # 4-D tensors only; a no-op copy-free return when the input is already channels_last.
    return x.contiguous(memory_format=torch.channels_last)


# ----------------------------------------------------------------------------------------------
# Small CNN
# ----------------------------------------------------------------------------------------------
class SmallCNN(nn.Module):
    """A small convolutional encoder: ``len(widths)`` blocks of conv3×3-BN-ReLU, a 2×2 max-pool
    after every block but the last, then global average pooling.

    Shapes: ``forward(x)``: ``(B, in_channels, H, W)`` float → ``(B, widths[-1])``;
    ``forward_features_map(x)`` → ``(B, widths[-1], H/2^(L-1), W/2^(L-1))`` (floor division at each
    pool, ``L = len(widths)``), the map before pooling, for dense tasks.

    **Memory format.** With ``channels_last=True`` (default) the weights are stored channels-last
    and every input is converted with ``x.contiguous(memory_format=torch.channels_last)``. On two
    CPU cores this made forward+backward of this network 1.3-2× faster and far more stable than
    NCHW (for example 0.113 s against 0.184 s for 512 images at 32×32),
    and on GPUs it is the layout cuDNN's tensor-core kernels prefer. The numbers are the same as in
    NCHW up to float rounding; ``channels_last=False`` gives the plain layout (for comparisons).
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64, 128),
        in_channels: int = 3,
        *,
        channels_last: bool = True,
    ):
        super().__init__()
        widths = _check_widths(widths)
        check_positive_int("in_channels", in_channels)
        layers: list[nn.Module] = []
        prev = in_channels
        for i, w in enumerate(widths):
            layers += [
                nn.Conv2d(prev, w, kernel_size=3, padding=1, bias=False),  # BN supplies the bias
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
            ]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            prev = w
        self.features = nn.Sequential(*layers)
        self.widths = widths
        self.feature_dim = widths[-1]
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def forward_features_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` → feature map ``(B, feature_dim, h, w)`` before global pooling."""
        if self.channels_last:
            x = _to_channels_last(x)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` → pooled features ``(B, feature_dim)``."""
        return self.forward_features_map(x).mean(dim=(2, 3))


# ----------------------------------------------------------------------------------------------
# ResNet-18, CIFAR variant
# ----------------------------------------------------------------------------------------------
class ResNet18Cifar(nn.Module):
    """ResNet-18 with the CIFAR stem, from *Deep Residual Learning for Image Recognition* (2015,
    arXiv 1512.03385): a 3×3 stride-1 first convolution and no max-pool, so a 32×32 image keeps
    32×32 resolution in the first stage (the ImageNet stem, 7×7 stride 2 plus a max-pool, would
    shrink it to 8×8 at once).

    The residual blocks are torchvision's own ``BasicBlock`` (not a copy); this class only builds
    the stem and the four stages of two blocks with widths ``width·(1, 2, 4, 8)`` and strides
    ``(1, 2, 2, 2)``. ``width=64`` is the standard ResNet-18 (11.2 M parameters); ``width=16`` or
    ``32`` give cheap versions for CPU runs. Weights are initialised as torchvision does (Kaiming
    normal, fan-out).

    Shapes: ``forward(x)``: ``(B, in_channels, H, W)`` → ``(B, 8·width)`` (``feature_dim`` = 512 for
    ``width=64``); ``forward_features_map(x)`` → ``(B, 8·width, ⌈H/8⌉, ⌈W/8⌉)``.
    ``channels_last`` works as in :class:`SmallCNN`.
    """

    def __init__(self, width: int = 64, in_channels: int = 3, *, channels_last: bool = True):
        super().__init__()
        check_positive_int("width", width)
        check_positive_int("in_channels", in_channels)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages = []
        prev = width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            stages.append(self._stage(prev, planes, stride))
            prev = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.width = width
        self.feature_dim = prev
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    @staticmethod
    def _stage(inplanes: int, planes: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or inplanes != planes:
            downsample = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
        return nn.Sequential(
            BasicBlock(inplanes, planes, stride=stride, downsample=downsample),
            BasicBlock(planes, planes),
        )

    def forward_features_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` → feature map ``(B, feature_dim, ⌈H/8⌉, ⌈W/8⌉)`` before pooling."""
        if self.channels_last:
            x = _to_channels_last(x)
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, H, W)`` → pooled features ``(B, feature_dim)``."""
        return self.forward_features_map(x).mean(dim=(2, 3))


# ----------------------------------------------------------------------------------------------
# Vision Transformer
# ----------------------------------------------------------------------------------------------
def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping square patches, row by row.

    ``(B, C, H, W)`` → ``(B, N, p·p·C)`` with ``N = (H/p)·(W/p)``; patch ``n`` is the one at grid
    row ``n // (W/p)``, column ``n % (W/p)``, flattened in ``(row, col, channel)`` order, the layout
    of *Masked Autoencoders Are Scalable Vision Learners* (2021, arXiv 2111.06377).
    :func:`unpatchify` is its exact inverse.
    """
    check_positive_int("patch_size", patch_size)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    b, c, h, w = images.shape
    if h % patch_size or w % patch_size:
        raise ValueError(
            f"patch_size={patch_size} is invalid: it must divide the image size {h}×{w}"
        )
    gh, gw = h // patch_size, w // patch_size
    x = images.reshape(b, c, gh, patch_size, gw, patch_size)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, p, p, C)
    return x.reshape(b, gh * gw, patch_size * patch_size * c)


def unpatchify(
    patches: torch.Tensor, patch_size: int, grid_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, p·p·C)`` → ``(B, C, gh·p, gw·p)``.

    ``grid_size = (gh, gw)`` patches per column and row; ``None`` means a square grid
    ``gh = gw = √N``. The channel count is read from the last dimension.
    """
    check_positive_int("patch_size", patch_size)
    if patches.ndim != 3:
        raise ValueError(f"patches must have shape (B, N, p*p*C), got {tuple(patches.shape)}")
    b, n, d = patches.shape
    if d % (patch_size * patch_size):
        raise ValueError(
            f"patch_size={patch_size} is invalid: patch length {d} is not a multiple of "
            f"{patch_size}*{patch_size}"
        )
    c = d // (patch_size * patch_size)
    if grid_size is None:
        g = math.isqrt(n)
        if g * g != n:
            raise ValueError(f"grid_size=None needs a square number of patches, got N={n}")
        grid_size = (g, g)
    gh, gw = grid_size
    if gh * gw != n:
        raise ValueError(f"grid_size={grid_size!r} is invalid: gh*gw must equal N={n}")
    x = patches.reshape(b, gh, gw, patch_size, patch_size, c)
    x = x.permute(0, 5, 1, 3, 2, 4)  # (B, C, gh, p, gw, p)
    return x.reshape(b, c, gh * patch_size, gw * patch_size)


class TinyViT(nn.Module):
    """A small Vision Transformer, *An Image is Worth 16x16 Words: Transformers for Image
    Recognition at Scale* (2020, arXiv 2010.11929).

    Image → :func:`patchify` → linear patch embedding → + learned position embedding →
    (optional class token) → ``depth`` pre-norm transformer layers (``nn.TransformerEncoderLayer``
    with ``norm_first=True``, GELU, no dropout) → final LayerNorm.

    - ``forward_tokens(x, keep_idx=None, mask=None)``: ``(B, 3, H, W)`` → ``(B, N(+1), dim)``; the
      class token, when ``pool="cls"``, comes first. ``keep_idx`` ``(B, n_keep)`` long keeps only
      those patch indices (row-major, as :func:`patchify`) per sample, *after* the position
      embedding has been added, so the encoder of *Masked Autoencoders Are Scalable Vision
      Learners* (2021, arXiv 2111.06377) sees only the visible patches yet knows where they are.
      Output then has ``n_keep (+1)`` tokens in ``keep_idx`` order. ``mask`` ``(B, N)`` bool,
      ``True`` = hidden, is the same with the same number of visible patches in every row.
    - ``forward(x)``: ``(B, 3, H, W)`` → ``(B, dim)``: the mean of the patch tokens
      (``pool="mean"``) or the class token (``pool="cls"``).

    Inputs whose size differs from ``image_size`` (a multiple of ``patch_size``) get the position
    embedding resized bicubically to their grid, as DINO does. With ``pos_embed=False`` nothing
    tells patches apart but their content, so the model is permutation-equivariant over patches
    (a teaching ablation: "vit_tiny_nopos").
    """

    def __init__(
        self,
        image_size: int = 32,
        patch_size: int = 4,
        dim: int = 128,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        pos_embed: bool = True,
        pool: str = "mean",
        in_channels: int = 3,
    ):
        super().__init__()
        check_positive_int("image_size", image_size)
        check_positive_int("patch_size", patch_size)
        check_positive_int("dim", dim)
        check_positive_int("depth", depth)
        check_positive_int("heads", heads)
        check_positive_int("in_channels", in_channels)
        check_range("mlp_ratio", mlp_ratio, 0.0, None, low_open=True)
        check_choice("pool", pool, ("mean", "cls"))
        if image_size % patch_size:
            raise ValueError(
                f"patch_size={patch_size} is invalid: it must divide image_size={image_size}"
            )
        if dim % heads:
            raise ValueError(f"heads={heads} is invalid: it must divide dim={dim}")
        self.image_size, self.patch_size, self.dim = image_size, patch_size, dim
        self.grid = image_size // patch_size
        self.num_patches = self.grid**2
        self.pool = pool
        self.feature_dim = dim
        self.patch_embed = nn.Linear(patch_size * patch_size * in_channels, dim)
        if pos_embed:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            self.register_parameter("pos_embed", None)
        if pool == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        else:
            self.register_parameter("cls_token", None)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                d_model=dim,
                nhead=heads,
                dim_feedforward=max(1, round(dim * mlp_ratio)),
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def _pos_embed_for(self, gh: int, gw: int) -> torch.Tensor:
        """Position embedding ``(1, gh·gw, dim)`` for a ``gh × gw`` patch grid."""
        pos = self.pos_embed
        if (gh, gw) == (self.grid, self.grid):
            return pos
        pos = pos.reshape(1, self.grid, self.grid, self.dim).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=(gh, gw), mode="bicubic", align_corners=False)
        return pos.permute(0, 2, 3, 1).reshape(1, gh * gw, self.dim)

    def _patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → embedded patches plus their position embedding ``(B, N, dim)``."""
        p = self.patch_size
        tokens = self.patch_embed(patchify(x, p))
        if self.pos_embed is not None:
            tokens = tokens + self._pos_embed_for(x.shape[-2] // p, x.shape[-1] // p)
        return tokens

    def forward_tokens(
        self,
        x: torch.Tensor,
        keep_idx: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, 3, H, W)`` → tokens ``(B, N + [cls], dim)``, or ``(B, n_keep + [cls], dim)`` with
        ``keep_idx`` ``(B, n_keep)`` / ``mask`` ``(B, N)`` (see the class docstring)."""
        b = x.shape[0]
        tokens = self._patch_tokens(x)  # (B, N, dim)
        if mask is not None:
            if keep_idx is not None:
                raise ValueError("pass keep_idx or mask, not both")
            keep_idx = self._mask_to_keep_idx(mask, tokens.shape[1])
        if keep_idx is not None:
            if keep_idx.ndim != 2 or keep_idx.shape[0] != b:
                raise ValueError(
                    f"keep_idx must have shape (B={b}, n_keep), got {tuple(keep_idx.shape)}"
                )
            idx = keep_idx.to(tokens.device, torch.long)
            tokens = tokens.gather(1, idx.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(b, -1, -1), tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    @torch.no_grad()
    def cls_attention(self, x: torch.Tensor) -> torch.Tensor:
        """How the class token attends to the patches in the last block, per head.

        ``(B, 3, H, W)`` → ``(B, heads, H/p, W/p)``: row 0 of the last block's attention
        weights (softmax over the class token and every patch), without the class token's own
        column, on the patch grid. The maps of *Emerging Properties in Self-Supervised Vision
        Transformers* (2021, arXiv 2104.14294). Needs ``pool="cls"``.
        """
        if self.cls_token is None:
            raise ValueError("cls_attention needs a class token: build the ViT with pool='cls'")
        b, _, h, w = x.shape
        *first, last = self.blocks
        tokens = torch.cat([self.cls_token.expand(b, -1, -1), self._patch_tokens(x)], dim=1)
        for block in first:
            tokens = block(tokens)
        q = last.norm1(tokens)
        _, weights = last.self_attn(q, q, q, need_weights=True, average_attn_weights=False)
        return weights[:, :, 0, 1:].reshape(b, -1, h // self.patch_size, w // self.patch_size)

    @staticmethod
    def _mask_to_keep_idx(mask: torch.Tensor, n: int) -> torch.Tensor:
        if mask.ndim != 2 or mask.shape[1] != n or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor (B, N={n}), got {mask.dtype} "
                             f"{tuple(mask.shape)}")
        visible = (~mask).sum(dim=1)
        if visible.numel() and not bool((visible == visible[0]).all()):
            raise ValueError("mask must hide the same number of patches in every row; "
                             "pass keep_idx for ragged masks")
        n_keep = int(visible[0]) if visible.numel() else 0
        # Visible (False) patches sort first; the stable sort keeps them in grid order.
        return torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, :n_keep]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` → ``(B, dim)``: mean patch token or class token, after the last norm."""
        tokens = self.forward_tokens(x)
        if self.pool == "cls":
            return tokens[:, 0]
        return tokens.mean(dim=1)


# ----------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------
class MLP(nn.Sequential):
    """A multilayer perceptron head: ``(num_layers - 1)`` × [Linear → BN → ReLU], then Linear.

    ``(B, in_dim)`` → ``(B, out_dim)``. ``batch_norm=False`` drops the hidden BNs (and the linear
    layers then get biases). ``last_batch_norm=True`` appends a BatchNorm1d without affine
    parameters to the output, as SimSiam's projector does (*Exploring Simple Siamese
    Representation Learning*, 2020, arXiv 2011.10566). ``num_layers=1`` is a single Linear.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        num_layers: int = 2,
        batch_norm: bool = True,
        last_batch_norm: bool = False,
    ):
        check_positive_int("in_dim", in_dim)
        check_positive_int("hidden_dim", hidden_dim)
        check_positive_int("out_dim", out_dim)
        check_positive_int("num_layers", num_layers)
        layers: list[nn.Module] = []
        prev = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(prev, hidden_dim, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            prev = hidden_dim
        layers.append(nn.Linear(prev, out_dim, bias=not last_batch_norm))
        if last_batch_norm:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        super().__init__(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim


def projector(
    in_dim: int, hidden_dim: int = 512, out_dim: int = 128, num_layers: int = 2
) -> MLP:
    """The projection head ``g`` of *A Simple Framework for Contrastive Learning of Visual
    Representations* (SimCLR, 2020, arXiv 2002.05709): an :class:`MLP` with BN in the hidden
    layers, ``(B, in_dim)`` → ``(B, out_dim)``. The loss is computed on its output; the probe uses
    the backbone features before it."""
    return MLP(in_dim, hidden_dim, out_dim, num_layers=num_layers, batch_norm=True)


def classifier_head(in_dim: int, hidden_dim: int, num_classes: int) -> nn.Module:
    """A classification head ``(B, in_dim)`` → logits ``(B, num_classes)``: linear when
    ``hidden_dim == 0``, else a two-layer :class:`MLP` with a BatchNorm hidden layer (which, like a
    projector, can absorb task-specific features that the backbone then need not keep)."""
    return nn.Linear(in_dim, num_classes) if hidden_dim == 0 else MLP(in_dim, hidden_dim,
                                                                        num_classes)


def predictor(dim: int, hidden_dim: int = 512) -> MLP:
    """The predictor ``q`` of *Bootstrap your own latent: A new approach to self-supervised
    Learning* (BYOL, 2020, arXiv 2006.07733): Linear → BN → ReLU → Linear, ``(B, dim)`` →
    ``(B, dim)``, applied to the online branch only."""
    return MLP(dim, hidden_dim, dim, num_layers=2, batch_norm=True)


# ----------------------------------------------------------------------------------------------
# Factory and helpers
# ----------------------------------------------------------------------------------------------
BACKBONES: dict[str, tuple[type[nn.Module], dict]] = {
    "small_cnn": (SmallCNN, {}),
    "small_cnn_wide": (SmallCNN, {"widths": (32, 64, 128, 256)}),
    "resnet18": (ResNet18Cifar, {}),
    "vit_tiny": (TinyViT, {}),
    "vit_tiny_nopos": (TinyViT, {"pos_embed": False}),
}


def backbone(name: str, **kw) -> nn.Module:
    """Build a backbone by name; keyword arguments override the preset's defaults.

    ``"small_cnn"`` (widths 16-32-64-128, ``feature_dim`` 128), ``"small_cnn_wide"``
    (32-64-128-256, 256), ``"resnet18"`` (CIFAR ResNet-18, 512), ``"vit_tiny"`` (patch 4, dim 128,
    depth 4, 128) and ``"vit_tiny_nopos"`` (the same without position embedding). Each maps
    ``(B, 3, S, S)`` → ``(B, model.feature_dim)``. An unknown name raises ``ValueError`` listing
    the names.
    """
    check_choice("name", name, BACKBONES)
    cls, defaults = BACKBONES[name]
    return cls(**{**defaults, **kw})


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
