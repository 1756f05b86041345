"""How a ShapeWorld image is drawn: background, clutter, object and noise, a chunk at a time.

A pixel's coverage of a shape is ``clamp(0.5 - distance_in_pixels, 0, 1)`` of its signed
distance field (``_sdf``), which anti-aliases every edge over one pixel; the object mask is
``distance < 0``. All images of a chunk are drawn at once with tensor operations; each class's
SDF is evaluated only on the samples of that class. Per pixel, only ``+ - * /``, ``sqrt``,
``abs``, ``sign``, ``min``/``max``/``clamp``, ``floor`` and integer hashing (``_hash``) are
used: they are exact or correctly rounded in every code path, so an image never depends on how
the work was split into SIMD lanes or threads. (``sin``/``cos`` may differ by one ulp between
vector and scalar loops; they are only used per sample, in float64, before rounding to float32.)
"""

from __future__ import annotations

import colorsys
import math

import torch

from ._hash import _DISTRACTOR_BASE, _N_STREAMS, _S, _counter_bits, _sample_hashes, _unit64
from ._sdf import _SDF, _length
from .config import BACKGROUNDS, ShapeWorldConfig


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV in [0, 1] → RGB in [0, 1]: (B,) × 3 → (B, 3). Arithmetic only."""
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(n + h * 6.0, 6.0)
        w = torch.minimum(k, 4.0 - k).clamp(0, 1)
        out.append(v - v * s * w)
    return torch.stack(out, dim=1)


def _rotated(px, py, cos, sin):
    """Project pixel coordinates on a per-sample direction: (S,), (S,), (B,), (B,) → (B, S, S)."""
    return px[None, None, :] * cos[:, None, None] + py[None, :, None] * sin[:, None, None]


def _stripe(coord: torch.Tensor, period: torch.Tensor) -> torch.Tensor:
    """Anti-aliased square wave in [0, 1] of ``coord`` (in periods): (B,S,S), period px (B,1,1)."""
    tri = (2.0 * (coord - torch.floor(coord)) - 1.0).abs()  # triangle wave in [0, 1]
    return ((tri - 0.5) * period * 0.5 + 0.5).clamp(0, 1)


def _background(cfg: ShapeWorldConfig, kind: torch.Tensor, u: torch.Tensor,
                texture_key: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Per-pixel mixing weight between the two background colours: → (B, S, S) in [0, 1].

    ``kind`` (B,) indexes ``BACKGROUNDS``; ``u`` (B, streams) float64 uniforms.
    """
    S = cfg.image_size
    b = kind.shape[0]
    t = torch.zeros(b, S, S, device=px.device)
    angle = (u[:, _S["bg_angle"]] * (2 * math.pi))
    cos, sin = torch.cos(angle).float(), torch.sin(angle).float()
    period = ((3.0 + 4.0 * u[:, _S["bg_period"]]) * (S / 32.0)).float()  # 3-7 px at 32×32
    phase = u[:, _S["bg_phase"]].float()
    phase2 = u[:, _S["bg_phase2"]].float()
    for k, name in enumerate(BACKGROUNDS):
        idx = (kind == k).nonzero().squeeze(1)
        if name == "flat" or idx.numel() == 0:
            continue
        c, s = cos[idx], sin[idx]
        if name == "gradient":
            w = (_rotated(px - S / 2, px - S / 2, c, s) / S + 0.5).clamp(0, 1)
        elif name == "stripes":
            per = period[idx, None, None]
            w = _stripe(_rotated(px, px, c, s) / per + phase[idx, None, None], per)
        elif name == "checker":
            per = period[idx, None, None] * 1.5
            a = _stripe(_rotated(px, px, c, s) / per + phase[idx, None, None], per)
            bb = _stripe(_rotated(px, px, -s, c) / per + phase2[idx, None, None], per)
            w = 0.5 + 0.5 * (2.0 * a - 1.0) * (2.0 * bb - 1.0)
        else:  # "noise": smooth value noise on a 4×4-cell grid, sharpened a little
            grid = 4
            vals = _unit64(_counter_bits(texture_key[idx], (grid + 1) ** 2)).float()
            vals = vals.view(-1, grid + 1, grid + 1)
            f = px / S * grid
            i0 = torch.floor(f).long().clamp(max=grid - 1)
            fr = f - i0
            fr = fr * fr * (3.0 - 2.0 * fr)
            top, bot = vals[:, i0], vals[:, i0 + 1]  # (n, S, grid + 1), rows
            top = top[:, :, i0] + (top[:, :, i0 + 1] - top[:, :, i0]) * fr[None, None, :]
            bot = bot[:, :, i0] + (bot[:, :, i0 + 1] - bot[:, :, i0]) * fr[None, None, :]
            w = top + (bot - top) * fr[None, :, None]
            w = ((w - 0.5) * 2.5 + 0.5).clamp(0, 1)
        t.index_copy_(0, idx, w)
    return t


def _triangular_noise(key: torch.Tensor, S: int, std: torch.Tensor) -> torch.Tensor:
    """Zero-mean per-pixel noise of standard deviation ``std`` (B,): ``key`` (B,) int64 →
    (B, 3, S, S) float32.

    Each value is the sum of two 8-bit uniforms (a triangular distribution, close enough to a
    Gaussian for image noise, with 511 levels: finer than the final 1/255 quantisation), read
    straight from the bytes of ``_counter_bits``: one 64-bit hash gives 4 values.
    """
    b = key.shape[0]
    words = _counter_bits(key, 3 * S * S // 4)  # 8 bytes each: 6 S² bytes
    pairs = words.view(torch.uint8).view(b, 3, S, S, 2)
    total = pairs[..., 0].to(torch.int16) + pairs[..., 1]  # 0..510, mean 255
    # each byte is uniform on {0..255}: variance (256² - 1) / 12; the sum has twice that
    scale = std.float() * (1.0 / math.sqrt((256.0**2 - 1.0) / 6.0))
    return total.to(torch.float32).sub_(255.0).mul_(scale[:, None, None, None])


def _render_chunk(cfg: ShapeWorldConfig, seed: int, first: int, b: int, device: torch.device):
    """Render samples ``first .. first + b - 1``: images float (b,3,S,S), masks, labels, factors."""
    S, K = cfg.image_size, cfg.num_classes
    index = torch.arange(first, first + b, dtype=torch.int64, device=device)
    labels = index % K
    z = _sample_hashes(seed, index, _N_STREAMS)  # (b, streams) int64
    u = _unit64(z)  # (b, streams) float64
    px = torch.arange(S, dtype=torch.float32, device=device) + 0.5  # pixel centres

    # -- object geometry (per sample, float64) --
    lo, hi = cfg.scale_range
    scale = lo + (hi - lo) * u[:, _S["scale"]]
    offset = ((1.0 - scale) * 0.5).clamp(max=cfg.position_jitter)  # stays inside the image
    x = 0.5 + (2.0 * u[:, _S["x"]] - 1.0) * offset
    y = 0.5 + (2.0 * u[:, _S["y"]] - 1.0) * offset
    rotation = (2.0 * u[:, _S["rotation"]] - 1.0) * cfg.max_rotation + 0.0
    radius = scale * (S / 2.0)  # pixels

    # Signed distance to the object in pixels, (b, S, S). Labels cycle, so the samples of class
    # k are the strided slice p0::K of the chunk: each class's SDF runs on its samples only.
    cx, cy = (x * S).float(), (y * S).float()
    cos_r = (torch.cos(rotation) / radius).float()
    sin_r = (torch.sin(rotation) / radius).float()
    radius_f = radius.float()
    dist = torch.empty(b, S, S, device=device)
    for k, name in enumerate(cfg.classes):
        sl = slice((k - first) % K, None, K)
        if sl.start >= b:
            continue
        dx = px[None, None, :] - cx[sl, None, None]  # (n, 1, S)
        dy = px[None, :, None] - cy[sl, None, None]  # (n, S, 1)
        c, s = cos_r[sl, None, None], sin_r[sl, None, None]
        # pixel → object units: rotate by -rotation, divide by the radius, flip y to point up
        qx = dx * c - dy * s
        qy = -(dx * s) - dy * c
        dist[sl] = _SDF[name](qx, qy).mul_(radius_f[sl, None, None])
    alpha = (0.5 - dist).clamp_(0, 1)

    # -- colours (per sample, float64) --
    if cfg.colour:
        hue = u[:, _S["hue"]]
        sat = 0.55 + 0.45 * u[:, _S["saturation"]]
        val = 0.65 + 0.35 * u[:, _S["value"]]
        obj_rgb = _hsv_to_rgb(hue, sat, val)
    else:
        h0, s0, v0 = colorsys.rgb_to_hsv(*cfg.fixed_colour)
        hue, sat, val = (torch.full((b,), c, dtype=torch.float64, device=device)
                         for c in (h0, s0, v0))
        obj_rgb = torch.tensor(cfg.fixed_colour, dtype=torch.float64, device=device).expand(b, 3)
    kinds = torch.tensor([BACKGROUNDS.index(k) for k in cfg.backgrounds], device=device)
    pick = (u[:, _S["bg_kind"]] * len(kinds)).long().clamp(max=len(kinds) - 1)
    bg_kind = kinds[pick]
    lo_c, hi_c = cfg.texture_contrast
    contrast = lo_c + (hi_c - lo_c) * u[:, _S["bg_value2"]]
    if cfg.background_colour:
        bg_hue = torch.remainder(hue + 0.25 + 0.5 * u[:, _S["bg_hue"]], 1.0)
        bg_sat = 0.2 + 0.6 * u[:, _S["bg_sat"]]
        bg_val = 0.08 + 0.4 * u[:, _S["bg_value"]]
        hue2 = torch.remainder(bg_hue + 0.16 * (u[:, _S["bg_hue2"]] - 0.5), 1.0)
        c1 = _hsv_to_rgb(bg_hue, bg_sat, bg_val)
        c2 = _hsv_to_rgb(hue2, bg_sat, bg_val + contrast)
    else:
        bg_hue = torch.zeros(b, dtype=torch.float64, device=device)
        bg_val = torch.full((b,), 0.15, dtype=torch.float64, device=device)
        c1 = bg_val[:, None].expand(b, 3)
        c2 = (bg_val + contrast)[:, None].expand(b, 3)
    t = _background(cfg, bg_kind, u, z[:, _S["texture_key"]], px)
    c1f, c2f = c1.float()[:, :, None, None], c2.float()[:, :, None, None]
    img = torch.mul(t[:, None], c2f - c1f).add_(c1f)  # (b, 3, S, S); in place: memory-bound

    # -- distractors: capsules (blobs or thin lines) under the object --
    n_dis = torch.zeros(b, dtype=torch.int64, device=device)
    if cfg.max_distractors:
        D = cfg.max_distractors
        n_dis = (u[:, _S["n_distractors"]] * (D + 1)).long().clamp(max=D)
        for j in range(D):
            idx = (n_dis > j).nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            v = u[idx, _DISTRACTOR_BASE + 8 * j: _DISTRACTOR_BASE + 8 * j + 8]
            is_line = v[:, 0] < 0.5
            ax, ay = (0.1 + 0.8 * v[:, 1]) * S, (0.1 + 0.8 * v[:, 2]) * S
            ang = v[:, 3] * (2 * math.pi)
            length = torch.where(is_line, (0.2 + 0.2 * v[:, 4]) * S, torch.zeros_like(ax))
            rad = torch.where(is_line, torch.full_like(ax, 0.7 * S / 32.0),
                              (0.04 + 0.05 * v[:, 5]) * S)  # lines ~1.4 px thick at 32×32
            bx, by = torch.cos(ang) * length, torch.sin(ang) * length
            inv = 1.0 / (bx * bx + by * by).clamp(min=1e-6)
            col = _hsv_to_rgb(v[:, 6], 0.3 + 0.7 * v[:, 7], 0.35 + 0.5 * v[:, 7]).float()
            ax, ay, bx, by, inv, rad = (
                a.float()[:, None, None] for a in (ax, ay, bx, by, inv, rad)
            )
            pax = px[None, None, :] - ax
            pay = px[None, :, None] - ay
            h = ((pax * bx + pay * by) * inv).clamp(0, 1)  # nearest point on the segment
            a = (0.5 - (_length(pax - bx * h, pay - by * h) - rad)).clamp(0, 1)[:, None]
            sub = img.index_select(0, idx)
            img.index_copy_(0, idx, sub.add_((col[:, :, None, None] - sub).mul_(a)))

    # -- object on top, then noise, then quantise --
    obj = obj_rgb.float()[:, :, None, None]
    img.sub_(obj).mul_(1.0 - alpha[:, None]).add_(obj)  # = img + (obj - img) * alpha
    sigma = cfg.noise_std * u[:, _S["noise"]]
    if cfg.noise_std > 0:
        img.add_(_triangular_noise(z[:, _S["noise_key"]], S, sigma))
    images = img.clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)
    f32 = lambda a: a.to(torch.float32)
    factors = {
        "class": labels,
        "hue": f32(hue), "saturation": f32(sat), "value": f32(val),
        "scale": f32(scale), "x": f32(x), "y": f32(y), "rotation": f32(rotation),
        "background": bg_kind, "background_hue": f32(bg_hue), "background_value": f32(bg_val),
        "n_distractors": n_dis, "noise": f32(sigma),
    }
    return images, dist < 0, labels, factors
