"""Colour operations on float images in [0, 1], with per-sample factors ``(B,)``.

They follow ``torchvision.transforms.v2.functional``'s formulas (``ColorJitter``'s brightness,
contrast, saturation and hue; grayscale, solarize, Gaussian blur) and may work in place.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F

# ITU-R 601 luma weights, exactly as torchvision's rgb_to_grayscale.
_GRAY = (0.2989, 0.587, 0.114)


@functools.cache
def _consts(device: torch.device) -> SimpleNamespace:
    """Small constant tensors, made once per device (never modified)."""
    return SimpleNamespace(
        gray=torch.tensor(_GRAY, device=device),
        # hue offsets n_c = (0, 2/3, 1/3) turns, plus 2 turns so that q stays positive
        hue=torch.tensor([2.0, 2 + 2 / 3, 2 + 1 / 3], device=device).view(1, 3, 1, 1),
    )


def _gray(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` → luma ``(B, 1, H, W)`` with torchvision's weights."""
    r, g, b = x.unbind(1)
    return r.mul(_GRAY[0]).add_(g, alpha=_GRAY[1]).add_(b, alpha=_GRAY[2]).unsqueeze_(1)


def _brightness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with black: ``clamp(f · x, 0, 1)``, in place."""
    return x.mul_(factor.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def _contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the image's mean luma: ``clamp(f · x + (1 - f) · mean(gray(x)), 0, 1)``."""
    mean = (x.mean((2, 3)) * _consts(x.device).gray).sum(1)  # = mean of gray(x), (B,)
    f = factor.view(-1, 1, 1, 1)
    return x.mul_(f).add_(mean.view(-1, 1, 1, 1) * (1.0 - f)).clamp_(0.0, 1.0)


def _saturation(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with the grayscale image: ``clamp(f · x + (1 - f) · gray(x), 0, 1)``, in place."""
    f = factor.view(-1, 1, 1, 1)
    gray = _gray(x)
    return x.mul_(f).addcmul_(gray, 1.0 - f).clamp_(0.0, 1.0)


def _hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of ``x`` by ``shift`` turns (``shift`` in [-0.5, 0.5]).

    A hue rotation keeps each pixel's largest and smallest channel (HSV value and saturation)
    and moves the third along the colour wheel. HSV → RGB in closed form is
    ``out_c = min + (max - min) · clamp(6·|q_c - 1/2| - 1, 0, 1)`` with
    ``q_c = frac(hue + shift + n_c)`` and channel offsets ``n = (0, 2/3, 1/3)`` (up to whole
    turns). The hue is computed as in torchvision's ``_rgb_to_hsv`` (the same three cases),
    so the result matches ``adjust_hue`` to float precision; the HSV image is never built.
    Masks are float (``torch.eq(..., out=float)``): bool masks and ``torch.where`` take slow
    paths on CPU.
    """
    r, g, b = x.unbind(1)
    maxc = torch.maximum(r, g)
    maxc = torch.maximum(maxc, b, out=maxc)
    minc = torch.minimum(r, g)
    minc = torch.minimum(minc, b, out=minc)
    cr = maxc - minc
    is_r = torch.eq(maxc, r, out=torch.empty_like(cr))  # 1.0 where red is the largest
    is_g = torch.eq(maxc, g, out=maxc)  # (maxc is not needed any more)
    is_g.addcmul_(is_g, is_r, value=-1.0)  # green largest and red not (torchvision's order)
    h = (r - g).add_(cr, alpha=4.0)  # hue · 6 · (max - min) where blue is the largest,
    tmp = (g - b).sub_(h)
    h.addcmul_(is_r, tmp)  # where red is,
    tmp = torch.sub(b, r, out=tmp).add_(cr, alpha=2.0).sub_(h)
    h.addcmul_(is_g, tmp)  # where green is.
    low = minc.sub_(cr)  # min - (max - min)
    cr6 = cr.mul_(6.0).clamp_min_(1e-12)  # a grey pixel (max = min) has hue 0
    h.div_(cr6)  # hue in turns, in [-1/6, 5/6)
    # (B, 3, 1, 1) offsets: n_c + shift + 2 turns keeps q positive, so frac() is the modulo.
    q = (h.unsqueeze(1) + (_consts(x.device).hue + shift.view(-1, 1, 1, 1))).frac_()
    # min + cr·clamp(6|q - 1/2| - 1, 0, 1) = (min - cr) + 6·cr·clamp(|q - 1/2|, 1/6, 1/3)
    q.sub_(0.5).abs_().clamp_(1.0 / 6.0, 1.0 / 3.0)
    return q.mul_(cr6.unsqueeze(1)).add_(low.unsqueeze(1))


def _solarize(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Invert the pixels at or above ``threshold``: ``x ≥ t ? 1 - x : x``."""
    return torch.where(x >= threshold, 1.0 - x, x)


def _blur_radius(sigma_max: float, size: int) -> int:
    """Half-width of the Gaussian kernel: 3σ, at most ``size - 1`` (reflect padding limit)."""
    return max(1, min(math.ceil(3.0 * sigma_max), size - 1))


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Blur image ``i`` of ``x`` ``(B, C, H, W)`` with its own ``sigma[i]`` (``sigma`` ``(B,)``).

    Separable: a ``(B, 2·radius + 1)`` table of normalised Gaussian weights, then, along W and
    along H, a sum over the taps of shifted copies (reflect padding, as torchvision). Equal to
    ``TF.gaussian_blur`` with kernel size ``2·radius + 1``; 2× faster on CPU than a grouped
    ``conv2d`` with one group per image channel.
    """
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma.view(-1, 1)) ** 2)
    k = (k / k.sum(1, keepdim=True)).view(-1, 1, 1, 1, 2 * radius + 1)
    for dim, pad in ((-1, (radius, radius, 0, 0)), (-2, (0, 0, radius, radius))):
        n = x.shape[dim]
        y = F.pad(x, pad, mode="reflect")
        x = y.narrow(dim, 0, n) * k[..., 0]
        for i in range(1, 2 * radius + 1):
            x.addcmul_(y.narrow(dim, i, n), k[..., i])
    return x


def _where_selected(x: torch.Tensor, mask: torch.Tensor, fn) -> torch.Tensor:
    """``x`` with image ``i`` replaced by ``fn(...)[i]`` where ``mask[i]`` (``mask`` ``(B,)``).

    ``fn(y, sel)`` transforms a batch ``y`` whose per-sample parameters are ``param[sel]``. On
    CPU only the selected images are computed (``index_select``/``index_copy_``, ``x`` is
    modified); elsewhere ``torch.where`` picks between ``fn(x)`` and ``x``, with no host sync.
    """
    if x.device.type == "cpu":
        idx = mask.nonzero().squeeze(1)
        if idx.numel() == x.shape[0]:  # contiguous: fn may return a view (grayscale's expand),
            return fn(x, idx).contiguous()  # and the next op may write into it in place
        if idx.numel():
            x.index_copy_(0, idx, fn(x.index_select(0, idx), idx))
        return x
    return torch.where(mask.view(-1, 1, 1, 1), fn(x, slice(None)), x)
